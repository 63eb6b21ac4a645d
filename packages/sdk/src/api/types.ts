/**
 * The SDK's names for the wire types. Every type here is taken from ./schema.gen.ts, which
 * openapi-typescript generates from spec/openapi.json (`npm run gen:types -w packages/sdk`); a field
 * the server adds to its schemas reaches these types by regenerating, without editing this file.
 */
import type { components, paths } from './schema.gen.js';

type Schemas = components['schemas'];
type Ok<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  responses: infer R;
}
  ? R extends { 200: { content: { 'application/json': infer B } } }
    ? B
    : R extends { 201: { content: { 'application/json': infer B } } }
      ? B
      : R extends { 202: { content: { 'application/json': infer B } } }
        ? B
        : never
  : never;
type Body<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: { content: { 'application/json': infer B } };
}
  ? B
  : never;

/** The body of every error answer: `{"error", "code", "hint"?}`. */
export type ErrorBody = Schemas['Error'];
/** Every code the server sends (the registry, docs/errors.md). */
export type ServerErrorCode = ErrorBody['code'];

/** Body of `POST /api/v2/mags-jobs` (v1 takes the same fields except `vcpus`, `memory_mb`, `rootfs_type`). */
export type SubmitBody = Schemas['SubmitJobV2Input'];
export type SubmitResponse = Schemas['SubmitJobAnswer'];

/** One job as `status`, `list` and `findJob` return it. */
export type Job = Schemas['JobStatus'];
/** A job's status value: `pending`, `running`, `sleeping`, `completed` or `error`. */
export type JobStatus = Job['status'];
export type JobList = Schemas['JobList'];

export type LogEntry = Schemas['LogEntry'];
export type LogLevel = LogEntry['level'];
export type LogStream = LogEntry['stream'];
export type Logs = Schemas['JobLogs'];
/** The `event: end` payload of the live log stream: the job's final status fields. */
export type LogEnd = Pick<Job, 'status'> & Partial<Pick<Job, 'exit_code' | 'end_reason' | 'error_message'>>;

/** Body of `PATCH /mags-jobs/{id}`. */
export type UpdateBody = NonNullable<Body<'/api/v1/mags-jobs/{id}', 'patch'>>;
export type UpdateResponse = Ok<'/api/v1/mags-jobs/{id}', 'patch'>;
export type StopResponse = Ok<'/api/v1/mags-jobs/{id}/stop', 'post'>;
/** Answer of `PUT /mags-jobs/{id}/stdin` (ours): bytes the script's stdin took. */
export type StdinAnswer = Schemas['StdinAnswer'];
/** Answer of `DELETE /mags-jobs/{id}` (ours). */
export type DeleteJobAnswer = Schemas['DeleteJobAnswer'];
export type PoolStatus = Schemas['PoolStatus'];

export type Me = Schemas['Me'];
export type TokenCreated = Schemas['CreatedToken'];
export type TokenInfo = Schemas['TokenInfo'];
export type TokenList = Ok<'/api/v1/tokens', 'get'>;
export type TokenRevoked = Ok<'/api/v1/tokens/{id}', 'delete'>;
export type User = Schemas['User'];
export type UserCreated = Ok<'/api/v1/users', 'post'>;
export type UserList = Ok<'/api/v1/users', 'get'>;
export type UsageAnswer = Schemas['UsageAnswer'];
export type Quota = Schemas['Quota'];
export type QuotaAnswer = Schemas['QuotaAnswer'];
export type Health = Ok<'/health', 'get'>;
export type Workspace = Schemas['Workspace'];
export type WorkspaceList = Schemas['WorkspaceList'];
export type SyncResponse = Schemas['SyncAnswer'];
export type WorkspaceVersion = Schemas['WorkspaceVersion'];
export type WorkspaceHistory = Schemas['WorkspaceHistory'];
export type RestoreResponse = Schemas['RestoreAnswer'];
export type ResizeResponse = Schemas['ResizeAnswer'];
export type UploadedFile = Ok<'/api/v1/mags-files', 'post'>;
export type UploadedFileList = Ok<'/api/v1/mags-files', 'get'>;
export type FileDeleted = Ok<'/api/v1/mags-files/{id}', 'delete'>;
/** A cron schedule (ours): its fields, job options, `next_runs`. */
export type Schedule = Schemas['Schedule'];
export type ScheduleList = Schemas['ScheduleList'];
export type ScheduleRun = Schemas['ScheduleRun'];
export type ScheduleRunList = Schemas['ScheduleRunList'];
export type CreateScheduleBody = Schemas['CreateScheduleInput'];
export type UpdateScheduleBody = Schemas['UpdateScheduleInput'];
export type ScheduleRunNow = Ok<'/api/v1/mags-cron/{id}/run', 'post'>;
export type ScheduleDeleted = Ok<'/api/v1/mags-cron/{id}', 'delete'>;
/** A webhook endpoint (ours); `WebhookCreated` also has its `secret`, shown once. */
export type WebhookEndpoint = Schemas['WebhookEndpoint'];
export type WebhookCreated = Ok<'/api/v1/webhooks', 'post'>;
export type WebhookList = Ok<'/api/v1/webhooks', 'get'>;
export type WebhookDelivery = Schemas['WebhookDelivery'];
export type WebhookDeliveryList = Ok<'/api/v1/webhooks/{id}/deliveries', 'get'>;
export type WebhookDeleted = Ok<'/api/v1/webhooks/{id}', 'delete'>;
export type WebhookSigningKey = Schemas['WebhookSigningKey'];
export type CreateWebhookBody = Schemas['CreateWebhookInput'];

/*
 * Answers of routes the spec lists without a success schema yet (this server answers them with
 * 501 FEATURE_NOT_AVAILABLE). They follow Mags' documented answers; once a route declares its answer
 * schema, its type here becomes an alias of the generated one like those above.
 */

/** Answer of `POST /mags-jobs/{id}/access`: a URL for HTTP ports, SSH details for port 22. */
export type Access = Schemas['AccessAnswer'];
export interface Success {
  success: boolean;
}
/** Answer of `POST /mags-jobs/{id}/exec`. */
export interface ExecResponse {
  exit_code: number;
  output: string;
  stderr?: string | null;
  /** True when output or stderr passed the server's cap (10 MiB each) and was cut. */
  truncated?: boolean;
  /** True when the command was killed by its timeout (exit_code 124). */
  timed_out?: boolean;
  duration_ms?: number;
}
/** One entry of a sandbox's file system, as the files API lists it. */
export type FileEntry = Schemas['FileEntry'];
/** The answer of `files.list`: entries sorted by path, `truncated` when cut. */
export type FileList = Schemas['FileList'];
export type UrlAlias = Schemas['UrlAlias'];
export type UrlAliasList = Schemas['UrlAliasList'];
