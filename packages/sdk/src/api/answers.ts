/**
 * Run-time checks of the answers, limited to the fields the SDK itself reads (ids it follows, the
 * status it waits on, the arrays it iterates). A server that answers something else fails loudly with
 * the field's name instead of surfacing `undefined` later; every other field passes through as the
 * server sent it. The field names are checked against the generated wire types at compile time.
 */
import type {
  Access,
  ExecResponse,
  Health,
  Job,
  JobList,
  LogEnd,
  LogEntry,
  Logs,
  Me,
  PoolStatus,
  StopResponse,
  StdinAnswer,
  DeleteJobAnswer,
  SubmitResponse,
  Success,
  TokenCreated,
  TokenList,
  UpdateResponse,
  UrlAlias,
  UrlAliasList,
  UserCreated,
  UserList,
  UsageAnswer,
  Quota,
  QuotaAnswer,
  WorkspaceList,
  SyncResponse,
  WorkspaceHistory,
  RestoreResponse,
  ResizeResponse,
  UploadedFile,
  UploadedFileList,
  FileDeleted,
  Schedule,
  ScheduleList,
  ScheduleRunList,
  ScheduleRunNow,
  ScheduleDeleted,
  WebhookCreated,
  WebhookEndpoint,
  WebhookList,
  WebhookDelivery,
  WebhookDeliveryList,
  WebhookDeleted,
  WebhookSigningKey,
} from './types.js';

type Kind = 'string' | 'number' | 'boolean' | 'object';
type Elem<V> = V extends readonly (infer E)[] ? E : never;
/** A field's expected kind (`?` suffix: may also be null or missing), or an array with its items' fields. */
type FieldCheck<V> = Kind | `${Kind}?` | { readonly each: Fields<Elem<NonNullable<V>>>; readonly optional?: boolean };
export type Fields<T> = { readonly [K in keyof T]?: FieldCheck<T[K]> };

/** What `HttpClient.request` checks an answer against; `T` is the answer's wire type. */
export interface AnswerCheck<T> {
  readonly fields: Fields<T>;
  /** Carries `T` for inference only; never set. */
  readonly _type?: (value: T) => T;
}

export function answer<T>(fields: Fields<T>): AnswerCheck<T> {
  return { fields };
}

/** The first mismatch as `field: problem`, or undefined when the value fits. */
export function mismatch(fields: object, value: unknown, prefix = ''): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return `${prefix || '(body)'}: expected an object`;
  const obj = value as Record<string, unknown>;
  for (const [key, check] of Object.entries(fields) as [string, FieldCheck<unknown>][]) {
    const v = obj[key];
    const path = prefix ? `${prefix}.${key}` : key;
    if (typeof check === 'object') {
      if (v === undefined || v === null) {
        if (check.optional) continue;
        return `${path}: expected an array`;
      }
      if (!Array.isArray(v)) return `${path}: expected an array`;
      for (let i = 0; i < v.length; i++) {
        const bad = mismatch(check.each, v[i], `${path}.${i}`);
        if (bad) return bad;
      }
      continue;
    }
    const optional = check.endsWith('?');
    const kind = optional ? check.slice(0, -1) : check;
    if (optional && (v === undefined || v === null)) continue;
    if (typeof v !== kind || v === null) return `${path}: expected ${kind}, got ${v === null ? 'null' : typeof v}`;
  }
  return undefined;
}

const jobFields: Fields<Job> = { request_id: 'string', status: 'string', exit_code: 'number?', end_reason: 'string?', error_message: 'string?' };
const logFields: Fields<LogEntry> = { message: 'string', seq: 'number?' };

export const SUBMIT = answer<SubmitResponse>({ request_id: 'string', status: 'string' });
export const JOB = answer<Job>(jobFields);
export const JOB_LIST = answer<JobList>({ jobs: { each: jobFields } });
export const LOG_ENTRY = answer<LogEntry>(logFields);
export const LOGS = answer<Logs>({ logs: { each: logFields } });
export const LOG_END = answer<LogEnd>({ status: 'string', exit_code: 'number?', end_reason: 'string?', error_message: 'string?' });
export const STOP = answer<StopResponse>({ success: 'boolean' });
export const STDIN_ANSWER = answer<StdinAnswer>({ bytes: 'number' });
export const DELETE_JOB = answer<DeleteJobAnswer>({ success: 'boolean', request_id: 'string' });
export const UPDATE = answer<UpdateResponse>({});
export const POOL = answer<PoolStatus>({});
export const ME = answer<Me>({ id: 'string', name: 'string' });
export const TOKEN_CREATED = answer<TokenCreated>({ id: 'string', token: 'string' });
export const TOKEN_LIST = answer<TokenList>({ tokens: { each: { id: 'string' } } });
export const USER_CREATED = answer<UserCreated>({ id: 'string', token: 'string' });
export const USER_LIST = answer<UserList>({ users: { each: { id: 'string' } } });
export const USAGE = answer<UsageAnswer>({ rows: { each: { key: 'string' } }, totals: 'object' });
export const QUOTA = answer<Quota>({ user_id: 'string' });
export const QUOTA_ANSWER = answer<QuotaAnswer>({ quota: 'object', used: 'object' });
export const HEALTH = answer<Health>({ status: 'string' });
export const SUCCESS = answer<Success>({ success: 'boolean' });
export const ACCESS = answer<Access>({ success: 'boolean', url: 'string?' });
export const EXEC = answer<ExecResponse>({ exit_code: 'number', output: 'string', stderr: 'string?' });
export const WORKSPACE_LIST = answer<WorkspaceList>({ workspaces: { each: { workspace_id: 'string' } } });
export const UPLOADED_FILE = answer<UploadedFile>({ file_id: 'string', name: 'string', size: 'number', sha256: 'string' });
export const FILE_LIST = answer<UploadedFileList>({ files: { each: { file_id: 'string' } } });
export const FILE_DELETED = answer<FileDeleted>({ success: 'boolean' });
export const SYNC = answer<SyncResponse>({ success: 'boolean', synced: 'boolean' });
export const WORKSPACE_HISTORY = answer<WorkspaceHistory>({ workspace_id: 'string', versions: { each: { version: 'string' } } });
export const RESTORE = answer<RestoreResponse>({ success: 'boolean', version: 'string' });
export const RESIZE = answer<ResizeResponse>({ success: 'boolean', disk_gb: 'number' });
export const SCHEDULE = answer<Schedule>({ id: 'string', name: 'string', cron_expression: 'string' });
export const SCHEDULE_LIST = answer<ScheduleList>({ schedules: { each: { id: 'string' } } });
export const SCHEDULE_RUNS = answer<ScheduleRunList>({ runs: { each: { scheduled_for: 'string', outcome: 'string' } } });
export const SCHEDULE_RUN = answer<ScheduleRunNow>({ scheduled_for: 'string', outcome: 'string' });
export const SCHEDULE_DELETED = answer<ScheduleDeleted>({ success: 'boolean', id: 'string' });
export const WEBHOOK_CREATED = answer<WebhookCreated>({ id: 'string', url: 'string', secret: 'string' });
export const WEBHOOK = answer<WebhookEndpoint>({ id: 'string', url: 'string', status: 'string' });
export const WEBHOOK_LIST = answer<WebhookList>({ webhooks: { each: { id: 'string' } } });
export const WEBHOOK_DELIVERY = answer<WebhookDelivery>({ id: 'string', status: 'string' });
export const WEBHOOK_DELIVERIES = answer<WebhookDeliveryList>({ deliveries: { each: { id: 'string' } } });
export const WEBHOOK_DELETED = answer<WebhookDeleted>({ success: 'boolean', id: 'string' });
export const WEBHOOK_SIGNING_KEY = answer<WebhookSigningKey>({ secret: 'string' });
export const URL_ALIAS = answer<UrlAlias>({ subdomain: 'string', url: 'string' });
export const URL_ALIAS_LIST = answer<UrlAliasList>({ aliases: { each: { subdomain: 'string', url: 'string' } } });
