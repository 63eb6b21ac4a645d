/**
 * `Mags`: the Node client of a Mags server, with the class and method names of Mags' own Node SDK
 * (`@magpiecloud/mags`). Methods that wrap one endpoint return the server's JSON as is (snake_case,
 * as Mags' SDK does); `runAndWait`, `new` and `exec` return camelCase results.
 */
import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import { resolveSettings } from './config.js';
import { MagsError, NotFoundError, TimeoutError } from './errors.js';
import { HttpClient, formatMs, type CallOptions, type FetchLike } from './http.js';
import { followJob, getJob, jobPath, sleep } from './follow.js';
import { SandboxFiles } from './files.js';
import { readRaw, toStream, type RawOutput } from './raw.js';
import {
  ACCESS,
  answer,
  EXEC,
  FILE_DELETED,
  FILE_LIST,
  HEALTH,
  JOB_LIST,
  LOGS,
  ME,
  POOL,
  STOP,
  STDIN_ANSWER,
  DELETE_JOB,
  SUBMIT,
  SUCCESS,
  SYNC,
  TOKEN_CREATED,
  TOKEN_LIST,
  UPDATE,
  UPLOADED_FILE,
  URL_ALIAS,
  URL_ALIAS_LIST,
  USER_CREATED,
  USER_LIST,
  USAGE,
  QUOTA,
  QUOTA_ANSWER,
  WORKSPACE_LIST,
  WORKSPACE_HISTORY,
  RESTORE,
  RESIZE,
  SCHEDULE,
  SCHEDULE_DELETED,
  SCHEDULE_LIST,
  SCHEDULE_RUN,
  SCHEDULE_RUNS,
  WEBHOOK,
  WEBHOOK_CREATED,
  WEBHOOK_DELETED,
  WEBHOOK_DELIVERIES,
  WEBHOOK_DELIVERY,
  WEBHOOK_LIST,
  WEBHOOK_SIGNING_KEY,
} from './api/answers.js';
import type {
  Access,
  FileDeleted,
  Health,
  Job,
  JobList,
  LogEntry,
  Logs,
  Me,
  PoolStatus,
  StopResponse,
  DeleteJobAnswer,
  SubmitBody,
  SubmitResponse,
  Success,
  SyncResponse,
  TokenCreated,
  TokenList,
  TokenRevoked,
  UpdateBody,
  UpdateResponse,
  UploadedFileList,
  UrlAlias,
  UrlAliasList,
  UserCreated,
  UserList,
  WorkspaceList,
  WorkspaceHistory,
  RestoreResponse,
  ResizeResponse,
  UsageAnswer,
  Quota,
  QuotaAnswer,
  CreateScheduleBody,
  CreateWebhookBody,
  Schedule,
  ScheduleDeleted,
  ScheduleList,
  ScheduleRunList,
  ScheduleRunNow,
  UpdateScheduleBody,
  WebhookCreated,
  WebhookDeleted,
  WebhookDelivery,
  WebhookDeliveryList,
  WebhookEndpoint,
  WebhookList,
  WebhookSigningKey,
} from './api/types.js';
import { SUBMIT_FIELDS, UPDATE_FIELDS, V2_FIELDS, rejectUnknownOptions, toCamelCase, toSnakeCase, toWire, type Camelize } from './wire.js';
import { isTerminalStatus } from './status.js';
import { execRequest, readExecStream } from './exec.js';

export const SDK_VERSION = '0.1.0';

export interface MagsOptions {
  /** API token; default MAGS_API_TOKEN, then MAGS_TOKEN, then `api_token` of ~/.mags/config.json. */
  apiToken?: string;
  /** Server URL; default MAGS_API_URL, then `api_url` of ~/.mags/config.json, then http://127.0.0.1:8090. */
  apiUrl?: string;
  /** Limit of each HTTP request in ms (default 30000; 0 = none). Waiting for a job is limited separately. */
  timeout?: number;
  /** A `fetch` to use instead of the global one (tests, proxies). */
  fetch?: FetchLike;
  /** Config file to read instead of ~/.mags/config.json. */
  configPath?: string;
  /**
   * Retries of an idempotent call (GET, PUT, DELETE; never a submit) after 429, 503 or a reset
   * connection, with exponential backoff and jitter or as `Retry-After` says (at most 30 s). Default 3.
   */
  maxRetries?: number;
}

/**
 * Options of `run`: the submit body's fields in camelCase (`workspaceId`, `noSleep`, `memoryMb`, ...).
 * The wire alias `timeout` is left out: `timeout` is the wait limit of `runAndWait`.
 */
export type RunOptions = Camelize<Omit<SubmitBody, 'script' | 'type' | 'timeout'>> &
  CallOptions & {
    /** Local files to upload first; the job finds each at `/root/<base name>` (added to `fileIds`). */
    files?: string[];
  };

/** What `uploadFile` returns. */
export interface UploadResult {
  /** The id to pass in `fileIds` (wire: `file_ids`). */
  fileId: string;
  /** Base name; jobs find the file at `/root/<name>`. */
  name: string;
  size: number;
  /** Hex SHA-256 the server computed while storing it. */
  sha256: string;
}

/** The submit fields `run` sends (the options' wire names). */
const RUN_FIELDS = SUBMIT_FIELDS.filter((f) => f !== 'timeout');
/** Every option name `run` takes. */
const RUN_OPTIONS = [...RUN_FIELDS.filter((f) => f !== 'script' && f !== 'type').map(toCamelCase), 'files', 'signal', 'timeoutMs'];
/** Every option name `runAndWait` takes. */
const RUN_AND_WAIT_OPTIONS = [...RUN_OPTIONS, 'onOutput', 'timeout'];

export interface RunAndWaitOptions extends RunOptions {
  /** Called with each output line as it arrives (stdout lines have level `info`, stderr `error`). */
  onOutput?: (line: LogEntry) => void;
  /** Limit of the whole wait in ms (default: none; the server's job timeout ends the job). */
  timeoutMs?: number;
  /** Same as `timeoutMs`, the name Mags' SDK uses. */
  timeout?: number;
}

/** What `runAndWait` returns once the job has ended. */
export interface RunResult {
  requestId: string;
  status: Job['status'];
  /** The script's exit code; null when it never ran to an exit (e.g. the sandbox failed). */
  exitCode: number | null;
  logs: LogEntry[];
  /** Why the script ended (`exited`, `timeout`, `oom`, ...); null when the server does not say. */
  endReason: Job['end_reason'];
  /** Why the job ended in `error`, when the server says. */
  errorMessage: string | null;
  /** The job's final status object (only the stream's end fields when the status could not be read). */
  job: Job | (Pick<Job, 'request_id' | 'status'> & Partial<Job>);
}

/** Options of `usage()`: dates as `Date` or ISO 8601 text. */
export interface UsageOptions {
  from?: Date | string;
  to?: Date | string;
  groupBy?: 'day' | 'job' | 'user';
  /** Admin only: one user's usage. */
  userId?: string;
}

/** Quotas an admin sets for a user (`users.setQuota`); null or absent = no limit. */
export interface QuotaInput {
  maxConcurrentSandboxes?: number | null;
  sandboxHoursPerMonth?: number | null;
  storageGb?: number | null;
}

export interface NewOptions extends CallOptions {
  /** Keep the workspace (`/root`) across runs: sends `workspace_id = name`. */
  persistent?: boolean;
  baseWorkspaceId?: string;
  diskGb?: number;
  noSleep?: boolean;
  startupCommand?: string;
  environment?: Record<string, string>;
  /** How long to wait for the sandbox to be up (ms, default 60000). */
  waitMs?: number;
  /** Same as `waitMs` (Mags' name). */
  timeout?: number;
  /** Time between status polls while waiting (ms, default 500). */
  pollInterval?: number;
}

/** What `new` resolves with: the submit answer's fields (`request_id`, ...) and the sandbox's state. */
export interface NewResult {
  request_id: string;
  message?: string;
  requestId: string;
  name: string;
  workspaceId: string | null;
  status: Job['status'];
}

export interface ExecOptions extends CallOptions {
  /** The command's wall-clock limit in ms (Mags' option; sent as whole seconds, default 300 s). The HTTP call waits 30 s longer unless `timeoutMs` says otherwise. */
  timeout?: number;
  env?: Record<string, string>;
  /** Working directory (default /root). */
  cwd?: string;
  /** Written to the command's stdin, which is then closed. */
  stdin?: string;
}

/** Options of `cronCreate` after its name, expression and script, in camelCase (`timezone`, `workspaceId`, `webhookUrl`, ...). */
export type CronCreateOptions = Camelize<Omit<CreateScheduleBody, 'name' | 'cron_expression' | 'script'>>;
/** Options of `cronUpdate`: any field of `cronCreate`. */
export type CronUpdateOptions = Camelize<UpdateScheduleBody>;
/** Options of `webhookCreate` after its URL: `events`, `description`. */
export type WebhookCreateOptions = Camelize<Omit<CreateWebhookBody, 'url'>>;

/** camelCase options -> the wire body (undefined left out). */
function snakeBody(opts: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined).map(([k, v]) => [toSnakeCase(k), v]));
}

export interface ExecResult {
  exitCode: number;
  output: string;
  stderr: string;
  /** True when the command ran past its timeout and was killed (exitCode 124). */
  timedOut: boolean;
  /** True when output or stderr passed the server's cap (10 MiB each) and was cut. */
  truncated: boolean;
}

export interface ExecStreamOptions extends ExecOptions {
  /**
   * Called with output as it arrives (UTF-8 text, never a split character). When it returns a
   * promise, reading waits for it: a slow consumer slows the stream down to the command itself,
   * which then blocks writing (the server holds only a bounded window).
   */
  onOutput: (stream: 'stdout' | 'stderr', text: string) => void | Promise<unknown>;
}

type UpdateOptions = Camelize<UpdateBody> & CallOptions;

/** Options of `enableAccess` / `url`: URL auth (ours) beside the call options. */
export interface UrlCallOptions extends CallOptions {
  /** `public` (default, as Mags) or `token`: only the owner's API token or a one-time login link. */
  auth?: 'public' | 'token';
}

/** Options of `urlAliasCreate`. */
export interface UrlAliasOptions {
  /** Must be the server's apps domain when given. */
  domain?: string;
  /** Port inside the sandbox (default 8080). */
  port?: number;
  /** URL auth (ours): `public` (default) or `token`. */
  auth?: 'public' | 'token';
}

/** Client of a Mags server. */
export class Mags {
  /** The server URL this client talks to. */
  readonly apiUrl: string;
  private readonly http: HttpClient;

  /** Token management (`/api/v1/tokens`). */
  readonly tokens: {
    create: (name: string, call?: CallOptions) => Promise<TokenCreated>;
    list: (call?: CallOptions) => Promise<TokenList>;
    revoke: (id: string, call?: CallOptions) => Promise<TokenRevoked>;
  };

  /** User management (`/api/v1/users`, admin only). */
  readonly users: {
    create: (name: string, opts?: { admin?: boolean } & CallOptions) => Promise<UserCreated>;
    list: (call?: CallOptions) => Promise<UserList>;
    /** A user's quotas and what is used of them. */
    quota: (userId: string, call?: CallOptions) => Promise<QuotaAnswer>;
    /** Sets a user's quotas; null or absent = no limit. */
    setQuota: (userId: string, quota: QuotaInput, call?: CallOptions) => Promise<Quota>;
  };

  /** Files of persistent jobs' sandboxes: read, write, list, remove, mkdir, move, watch (docs/files.md). */
  readonly files: SandboxFiles;

  constructor(opts: MagsOptions = {}) {
    const settings = resolveSettings(opts);
    const f = opts.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (!f) throw new MagsError('No fetch available: use Node 20+ or pass the `fetch` option', { code: 'HTTP_ERROR' });
    this.apiUrl = settings.apiUrl;
    this.http = new HttpClient({
      apiUrl: settings.apiUrl,
      apiToken: settings.apiToken,
      timeoutMs: opts.timeout ?? 30_000,
      fetch: f,
      userAgent: `mags-node/${SDK_VERSION}`,
      maxRetries: opts.maxRetries,
    });
    this.tokens = {
      create: (name, call) =>
        this.http.request({ method: 'POST', path: '/api/v1/tokens', body: { name }, answer: TOKEN_CREATED, call }),
      list: (call) => this.http.request({ method: 'GET', path: '/api/v1/tokens', answer: TOKEN_LIST, call }),
      revoke: (id, call) =>
        this.http.request({ method: 'DELETE', path: `/api/v1/tokens/${encodeURIComponent(id)}`, answer: answer<TokenRevoked>({ success: 'boolean' }), call }),
    };
    this.files = new SandboxFiles(this.http);
    this.users = {
      create: (name, { admin, ...call } = {}) =>
        this.http.request({
          method: 'POST',
          path: '/api/v1/users',
          body: { name, ...(admin === undefined ? {} : { admin }) },
          answer: USER_CREATED,
          call,
        }),
      list: (call) => this.http.request({ method: 'GET', path: '/api/v1/users', answer: USER_LIST, call }),
      quota: (userId, call) => this.http.request({ method: 'GET', path: `/api/v1/users/${encodeURIComponent(userId)}/quota`, answer: QUOTA_ANSWER, call }),
      setQuota: (userId, quota, call) =>
        this.http.request({
          method: 'PUT',
          path: `/api/v1/users/${encodeURIComponent(userId)}/quota`,
          body: { max_concurrent_sandboxes: quota.maxConcurrentSandboxes ?? null, sandbox_hours_per_month: quota.sandboxHoursPerMonth ?? null, storage_gb: quota.storageGb ?? null },
          answer: QUOTA,
          call,
        }),
    };
  }

  /** Whether a token was found (option, env or config file). Calls other than `health` need one. */
  get hasToken(): boolean {
    return this.http.apiToken !== undefined && this.http.apiToken !== '';
  }

  /** Submits a job; uses `/api/v2/mags-jobs` when `vcpus`, `memoryMb` or `rootfsType` is set. */
  async run(script: string, opts: RunOptions = {}): Promise<SubmitResponse> {
    rejectUnknownOptions('run()', opts, RUN_OPTIONS);
    const { signal, timeoutMs, files, ...fields } = opts;
    if (files && files.length > 0) {
      const uploaded: string[] = [];
      for (const path of files) uploaded.push((await this.uploadFile(path, { signal })).fileId);
      fields.fileIds = [...(fields.fileIds ?? []), ...uploaded];
    }
    const body = { ...toWire<SubmitBody>(RUN_FIELDS, fields), script, type: 'inline' as const };
    const v2 = V2_FIELDS.some((f) => body[f] !== undefined);
    return this.http.request({
      method: 'POST',
      path: v2 ? '/api/v2/mags-jobs' : '/api/v1/mags-jobs',
      body,
      answer: SUBMIT,
      call: { signal, timeoutMs },
    });
  }

  /**
   * Submits a job and follows its live output until it ends; returns status, exit code and all lines.
   * Resolves as soon as the server reports the end (no polling delay).
   */
  async runAndWait(script: string, opts: RunAndWaitOptions = {}): Promise<RunResult> {
    rejectUnknownOptions('runAndWait()', opts, RUN_AND_WAIT_OPTIONS);
    const { onOutput, timeoutMs, timeout, signal, ...runOpts } = opts;
    const waitMs = timeoutMs ?? timeout;
    const submitted = await this.run(script, { ...runOpts, signal });
    return this.waitFor(submitted.request_id, { onOutput, timeoutMs: waitMs, signal });
  }

  /** Follows an already submitted job until it ends, like the second half of `runAndWait`. */
  async waitFor(
    id: string,
    opts: { onOutput?: (line: LogEntry) => void; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<RunResult> {
    const logs: LogEntry[] = [];
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(opts.signal?.reason);
    if (opts.signal?.aborted) throw opts.signal.reason;
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timer =
      opts.timeoutMs && opts.timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            controller.abort(new Error('wait limit reached'));
          }, opts.timeoutMs)
        : undefined;
    try {
      const end = await followJob(this.http, id, {
        signal: controller.signal,
        onLine: (line) => {
          logs.push(line);
          opts.onOutput?.(line);
        },
      });
      const job = await getJob(this.http, id, opts.signal).catch(() => undefined);
      return {
        requestId: id,
        status: job?.status ?? end.status,
        exitCode: job?.exit_code ?? end.exit_code ?? null,
        logs,
        endReason: job?.end_reason ?? end.end_reason ?? null,
        errorMessage: job?.error_message ?? end.error_message ?? null,
        job: job ?? { request_id: id, status: end.status, exit_code: end.exit_code ?? null },
      };
    } catch (err) {
      if (timedOut) {
        throw new TimeoutError(`Job ${id} did not end within ${formatMs(opts.timeoutMs ?? 0)}`, {
          code: 'TIMEOUT',
          hint: `It keeps running on the server: follow it with \`mags logs -f ${id}\` or end it with \`mags stop ${id}\`.`,
        });
      }
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** One job's status. `nameOrId` is a request id, job name or workspace id. */
  status(nameOrId: string, call: CallOptions = {}): Promise<Job> {
    return getJob(this.http, nameOrId, call.signal, call.timeoutMs);
  }

  /** A job's log lines so far (`after`: only lines with a higher `seq`; `tail` (ours): only the last n). */
  logs(nameOrId: string, opts: { after?: number; tail?: number } & CallOptions = {}): Promise<Logs> {
    const { after, tail, ...call } = opts;
    return this.http.request({ method: 'GET', path: jobPath(nameOrId, '/logs'), query: { after, tail }, answer: LOGS, call });
  }

  /** Yields a job's log lines live until the job ends (or, for a persistent job, goes idle). */
  async *streamLogs(nameOrId: string, opts: { after?: number; signal?: AbortSignal } = {}): AsyncGenerator<LogEntry> {
    const queue: LogEntry[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    let failure: { err: unknown } | undefined;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    followJob(this.http, nameOrId, {
      after: opts.after,
      signal: controller.signal,
      onLine: (line) => {
        queue.push(line);
        wake?.();
      },
    }).then(
      () => { done = true; wake?.(); },
      (err: unknown) => { failure = { err }; done = true; wake?.(); },
    );
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (done) {
          if (failure) throw failure.err;
          return;
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      if (!done) controller.abort();
    }
  }

  /**
   * Yields a job's output bytes exactly as written, per stream (ours; a Mags server throws
   * `FEATURE_NOT_AVAILABLE`). With `follow` it waits for more and ends with `{ end }` when the job ends.
   */
  streamRaw(nameOrId: string, opts: { follow?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<RawOutput> {
    return readRaw(this.http, nameOrId, opts);
  }

  /**
   * Streams the stdin of a job submitted with `stdin: true` (ours): the script reads `data` as it
   * is sent (a stream is never held whole). Resolves with the bytes the script's stdin took, once
   * it reached EOF or the job ended. Pass `timeoutMs: 0` for a long upload.
   */
  sendStdin(nameOrId: string, data: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Uint8Array | string, call: CallOptions = {}): Promise<{ bytes: number }> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data instanceof Uint8Array || data instanceof ReadableStream ? data : toStream(data);
    return this.http.request({ method: 'PUT', path: jobPath(nameOrId, '/stdin'), bytes, answer: STDIN_ANSWER, call });
  }

  /** New terminal size of a job submitted with `tty` (ours). */
  resizeTty(nameOrId: string, cols: number, rows: number, call: CallOptions = {}): Promise<Success> {
    return this.http.request({ method: 'POST', path: jobPath(nameOrId, '/resize'), body: { cols, rows }, answer: SUCCESS, call });
  }

  /** The caller's jobs, newest first; `status` and `since` (ours) filter them. */
  list(opts: { page?: number; pageSize?: number; status?: Job['status'] | Job['status'][]; since?: Date | string } & CallOptions = {}): Promise<JobList> {
    const { page, pageSize, status, since, ...call } = opts;
    return this.http.request({
      method: 'GET',
      path: '/api/v1/mags-jobs',
      // status and since are ours: a Mags server ignores them.
      query: { page, page_size: pageSize, status: Array.isArray(status) ? status.join(',') : status, since: since instanceof Date ? since.toISOString() : since },
      answer: JOB_LIST,
      call,
    });
  }

  /** Stops a job (a workspace is synced first). */
  stop(nameOrId: string, call: CallOptions = {}): Promise<StopResponse> {
    return this.http.request({ method: 'POST', path: jobPath(nameOrId, '/stop'), body: {}, answer: STOP, call });
  }

  /** Deletes a job that ended and its output (ours); a queued, running or sleeping job is refused (409 `CONFLICT`). */
  deleteJob(nameOrId: string, call: CallOptions = {}): Promise<DeleteJobAnswer> {
    return this.http.request({ method: 'DELETE', path: jobPath(nameOrId), answer: DELETE_JOB, call });
  }

  /**
   * Enables URL access to a port of a persistent job (port 22: SSH access). `auth: 'token'` (ours)
   * makes the URL private: the answer then carries a one-time `login_url`.
   */
  enableAccess(nameOrId: string, port = 8080, call: UrlCallOptions = {}): Promise<Access> {
    const { auth, ...rest } = call;
    return this.http.request({ method: 'POST', path: jobPath(nameOrId, '/access'), body: { port, ...(auth ? { auth } : {}) }, answer: ACCESS, call: rest });
  }

  /** Same as `enableAccess` (Mags' older name). */
  enableUrl(nameOrId: string, port = 8080, call: CallOptions = {}): Promise<Access> {
    return this.enableAccess(nameOrId, port, call);
  }

  /** Enables URL access and returns the answer with its public `url` (`auth: 'token'`: private, with a `login_url`). */
  async url(nameOrId: string, port = 8080, call: UrlCallOptions = {}): Promise<Access> {
    const access = await this.enableAccess(nameOrId, port, call);
    if (!access.url) {
      throw new MagsError(`The server enabled port ${port} of ${nameOrId} but returned no URL`, { code: 'INVALID_RESPONSE' });
    }
    return access;
  }

  /** Changes a job's `noSleep` / `startupCommand`. */
  updateJob(nameOrId: string, opts: UpdateOptions): Promise<UpdateResponse> {
    const { signal, timeoutMs, ...fields } = opts;
    return this.http.request({
      method: 'PATCH',
      path: jobPath(nameOrId),
      body: toWire<UpdateBody>(UPDATE_FIELDS, fields),
      answer: UPDATE,
      call: { signal, timeoutMs },
    });
  }

  /**
   * The running or sleeping job with this name or workspace id (or the job with this request id);
   * null when there is none.
   */
  async findJob(nameOrId: string, call: CallOptions = {}): Promise<Job | null> {
    try {
      const job = await this.status(nameOrId, call);
      if (job.request_id === nameOrId || job.status === 'running' || job.status === 'sleeping' || job.status === 'pending') {
        return job;
      }
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    for (let page = 1; page <= 10; page++) {
      const list = await this.list({ page, pageSize: 100, ...call });
      const hit = list.jobs.find(
        (j) => (j.name === nameOrId || j.workspace_id === nameOrId) && ['running', 'sleeping', 'pending'].includes(j.status),
      );
      if (hit) return hit;
      if (list.jobs.length < 100) break;
    }
    return null;
  }

  /** The warm pool: `idle_vms`, `busy_vms`, `total_vms`, `min_pool_size`, `max_pool_size`. */
  poolStatus(call: CallOptions = {}): Promise<PoolStatus> {
    return this.http.request({ method: 'GET', path: '/api/v1/mags-jobs/pool-status', answer: POOL, call });
  }

  /**
   * Usage (wall and vCPU seconds, memory, egress, storage) in [from, to), grouped by day (default),
   * job or user. Defaults to the last 30 days; an admin sees every user's unless `userId` is set.
   */
  usage(opts: UsageOptions = {}, call: CallOptions = {}): Promise<UsageAnswer> {
    rejectUnknownOptions('usage()', opts, ['from', 'to', 'groupBy', 'userId']);
    const q = new URLSearchParams();
    const when = (d: Date | string) => (d instanceof Date ? d.toISOString() : d);
    if (opts.from !== undefined) q.set('from', when(opts.from));
    if (opts.to !== undefined) q.set('to', when(opts.to));
    if (opts.groupBy !== undefined) q.set('group_by', opts.groupBy);
    if (opts.userId !== undefined) q.set('user_id', opts.userId);
    const qs = q.toString();
    return this.http.request({ method: 'GET', path: `/api/v1/usage${qs ? `?${qs}` : ''}`, answer: USAGE, call });
  }

  /** The caller's quotas and what is used of them. */
  quota(call: CallOptions = {}): Promise<QuotaAnswer> {
    return this.http.request({ method: 'GET', path: '/api/v1/quota', answer: QUOTA_ANSWER, call });
  }

  /** The user the token belongs to. */
  whoami(call: CallOptions = {}): Promise<Me> {
    return this.http.request({ method: 'GET', path: '/api/v1/me', answer: ME, call });
  }

  /** Server health (needs no token). */
  health(call: CallOptions = {}): Promise<Health> {
    return this.http.request({ method: 'GET', path: '/health', answer: HEALTH, auth: false, call });
  }

  /**
   * Starts a persistent sandbox named `name` and waits until it is up (Mags' `mags new`). With
   * `persistent: true` its `/root` is kept as workspace `name`.
   */
  async new(name: string, opts: NewOptions = {}): Promise<NewResult> {
    const { persistent, waitMs, timeout, pollInterval = 500, signal, timeoutMs, ...rest } = opts;
    const wait = waitMs ?? timeout ?? 60_000;
    const submitted = await this.run('true', {
      ...rest,
      name,
      persistent: true,
      ...(persistent ? { workspaceId: name } : {}),
      signal,
      timeoutMs,
    });
    const deadline = Date.now() + wait;
    for (;;) {
      const job = await this.status(submitted.request_id, { signal, timeoutMs });
      if (job.status === 'running' || job.status === 'sleeping') {
        return { ...submitted, requestId: job.request_id, name, workspaceId: job.workspace_id ?? null, status: job.status };
      }
      if (isTerminalStatus(job.status)) {
        throw new MagsError(`Sandbox ${name} ended while starting (${job.status}${job.error_message ? `: ${job.error_message}` : ''})`, {
          code: 'JOB_FAILED',
        });
      }
      if (Date.now() > deadline) {
        throw new TimeoutError(`Sandbox ${name} was not up within ${formatMs(wait)}`, { code: 'TIMEOUT' });
      }
      await sleep(Math.max(50, pollInterval), signal);
    }
  }

  /**
   * Runs a command in a running, frozen or sleeping persistent sandbox (waking it) and returns its
   * output and exit code (`POST /api/v1/mags-jobs/{id}/exec`). A command killed by its `timeout`
   * answers exitCode 124 and `timedOut: true`.
   */
  async exec(nameOrId: string, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const { body, call } = execRequest(command, opts);
    const r = await this.http.request({ method: 'POST', path: jobPath(nameOrId, '/exec'), body, answer: EXEC, call });
    return { exitCode: r.exit_code, output: r.output, stderr: r.stderr ?? '', timedOut: r.timed_out ?? false, truncated: r.truncated ?? false };
  }

  /**
   * Like `exec`, with output delivered to `onOutput` as it arrives (the NDJSON form of the exec
   * endpoint): for long commands and output of any size. Resolves with the exit code.
   */
  async execStream(nameOrId: string, command: string, opts: ExecStreamOptions): Promise<{ exitCode: number; timedOut: boolean }> {
    const { onOutput, ...rest } = opts;
    const { body, call } = execRequest(command, rest);
    const res = await this.http.openStream(jobPath(nameOrId, '/exec'), { stream: 1 }, { signal: call.signal, timeoutMs: call.timeoutMs }, { method: 'POST', body, accept: 'application/x-ndjson' });
    return readExecStream(res, onOutput);
  }

  /**
   * Syncs a workspace now without stopping its job (`POST /mags-jobs/{id}/sync`); `nameOrId` is a
   * workspace id or a job's request id or name. The answer's `synced` is false when the server keeps
   * workspaces on its own disk only.
   */
  sync(nameOrId: string, call: CallOptions = {}): Promise<SyncResponse> {
    return this.http.request({ method: 'POST', path: jobPath(nameOrId, '/sync'), body: {}, answer: SYNC, call });
  }

  /** The caller's workspaces (`GET /api/v1/workspaces`). */
  listWorkspaces(call: CallOptions = {}): Promise<WorkspaceList> {
    return this.http.request({ method: 'GET', path: '/api/v1/workspaces', answer: WORKSPACE_LIST, call });
  }

  /**
   * Uploads a local file (`POST /api/v1/mags-files`), streamed from disk as multipart/form-data
   * under its base name. Pass the returned `fileId` in `fileIds`, or use `run(..., { files })`.
   * A large file may need a longer `timeoutMs` than the client's default.
   */
  async uploadFile(path: string, call: CallOptions = {}): Promise<UploadResult> {
    let blob: Blob;
    try {
      blob = await openAsBlob(path);
    } catch (err) {
      throw new MagsError(`Cannot read ${path}: ${(err as Error).message}`, { code: 'VALIDATION_ERROR', hint: 'Check the path of the file to upload.' });
    }
    const form = new FormData();
    form.append('file', blob, basename(path));
    const r = await this.http.request({ method: 'POST', path: '/api/v1/mags-files', form, answer: UPLOADED_FILE, call });
    return { fileId: r.file_id, name: r.name, size: r.size, sha256: r.sha256 };
  }

  /** The caller's uploaded files, newest first (`GET /api/v1/mags-files`). */
  listFiles(call: CallOptions = {}): Promise<UploadedFileList> {
    return this.http.request({ method: 'GET', path: '/api/v1/mags-files', answer: FILE_LIST, call });
  }

  /** Deletes an uploaded file (`DELETE /api/v1/mags-files/{id}`; FILE_NOT_FOUND when it is not yours). */
  deleteFile(fileId: string, call: CallOptions = {}): Promise<FileDeleted> {
    return this.http.request({ method: 'DELETE', path: `/api/v1/mags-files/${encodeURIComponent(fileId)}`, answer: FILE_DELETED, call });
  }

  /** Deletes a workspace and its stored files (`DELETE /api/v1/workspaces/{id}`; WORKSPACE_BUSY while a job uses it). */
  deleteWorkspace(workspaceId: string, call: CallOptions = {}): Promise<Success> {
    return this.http.request({
      method: 'DELETE',
      path: `/api/v1/workspaces/${encodeURIComponent(workspaceId)}`,
      answer: SUCCESS,
      call,
    });
  }

  /** A workspace's stored versions, newest first (`GET /api/v1/workspaces/{id}/history`). */
  workspaceHistory(workspaceId: string, call: CallOptions = {}): Promise<WorkspaceHistory> {
    return this.http.request({ method: 'GET', path: `/api/v1/workspaces/${encodeURIComponent(workspaceId)}/history`, answer: WORKSPACE_HISTORY, call });
  }

  /**
   * Rebuilds a workspace from a stored version; that state becomes its newest version
   * (`POST /api/v1/workspaces/{id}/restore`; VERSION_NOT_FOUND, WORKSPACE_BUSY while a job uses it).
   */
  restoreWorkspace(workspaceId: string, version: string, call: CallOptions = {}): Promise<RestoreResponse> {
    return this.http.request({ method: 'POST', path: `/api/v1/workspaces/${encodeURIComponent(workspaceId)}/restore`, body: { version }, answer: RESTORE, call });
  }

  /** Grows a workspace's disk to `diskGb` GB (`PATCH /api/v1/workspaces/{id}`; it never shrinks). */
  resizeWorkspace(workspaceId: string, diskGb: number, call: CallOptions = {}): Promise<ResizeResponse> {
    return this.http.request({ method: 'PATCH', path: `/api/v1/workspaces/${encodeURIComponent(workspaceId)}`, body: { disk_gb: diskGb }, answer: RESIZE, call });
  }

  /**
   * Points `<subdomain>.apps.<domain>` at the newest running/sleeping job of a workspace
   * (`POST /api/v2/mags-url-aliases`); the third argument is the domain (Mags' form) or
   * `{ domain, port, auth }`.
   */
  urlAliasCreate(subdomain: string, workspaceId: string, domainOrOptions?: string | UrlAliasOptions, call: CallOptions = {}): Promise<UrlAlias> {
    const o: UrlAliasOptions = typeof domainOrOptions === 'string' ? { domain: domainOrOptions } : (domainOrOptions ?? {});
    return this.http.request({
      method: 'POST',
      path: '/api/v2/mags-url-aliases',
      body: { subdomain, workspace_id: workspaceId, ...(o.domain ? { domain: o.domain } : {}), ...(o.port ? { port: o.port } : {}), ...(o.auth ? { auth: o.auth } : {}) },
      answer: URL_ALIAS,
      call,
    });
  }

  /** The caller's URL aliases (`GET /api/v2/mags-url-aliases`). */
  urlAliasList(call: CallOptions = {}): Promise<UrlAliasList> {
    return this.http.request({ method: 'GET', path: '/api/v2/mags-url-aliases', answer: URL_ALIAS_LIST, call });
  }

  /** Removes a URL alias (`DELETE /api/v2/mags-url-aliases/{subdomain}`). */
  urlAliasDelete(subdomain: string, call: CallOptions = {}): Promise<Success> {
    return this.http.request({
      method: 'DELETE',
      path: `/api/v2/mags-url-aliases/${encodeURIComponent(subdomain)}`,
      answer: SUCCESS,
      call,
    });
  }

  /**
   * Creates a cron schedule (`POST /api/v1/mags-cron`): `script` runs at each time of
   * `cronExpression` (5 fields or `@hourly`-style); `opts` are `timezone`, `overlap`, `catchUp`,
   * `jitterSeconds`, `enabled` and the `run` options. The answer lists `next_runs`.
   */
  cronCreate(name: string, cronExpression: string, script: string, opts: CronCreateOptions = {}, call: CallOptions = {}): Promise<Schedule> {
    const body = { ...snakeBody(opts), name, cron_expression: cronExpression, script };
    return this.http.request({ method: 'POST', path: '/api/v1/mags-cron', body, answer: SCHEDULE, call });
  }

  /** The caller's schedules (`GET /api/v1/mags-cron`). */
  cronList(call: CallOptions = {}): Promise<ScheduleList> {
    return this.http.request({ method: 'GET', path: '/api/v1/mags-cron', answer: SCHEDULE_LIST, call });
  }

  /** One schedule by id or name (SCHEDULE_NOT_FOUND otherwise). */
  cronGet(idOrName: string, call: CallOptions = {}): Promise<Schedule> {
    return this.http.request({ method: 'GET', path: `/api/v1/mags-cron/${encodeURIComponent(idOrName)}`, answer: SCHEDULE, call });
  }

  /** Changes a schedule (`PATCH /api/v1/mags-cron/{id}`), e.g. `{ enabled: false }`. */
  cronUpdate(idOrName: string, opts: CronUpdateOptions, call: CallOptions = {}): Promise<Schedule> {
    return this.http.request({ method: 'PATCH', path: `/api/v1/mags-cron/${encodeURIComponent(idOrName)}`, body: snakeBody(opts), answer: SCHEDULE, call });
  }

  /** Deletes a schedule; the jobs it submitted stay. */
  cronDelete(idOrName: string, call: CallOptions = {}): Promise<ScheduleDeleted> {
    return this.http.request({ method: 'DELETE', path: `/api/v1/mags-cron/${encodeURIComponent(idOrName)}`, answer: SCHEDULE_DELETED, call });
  }

  /** Fires a schedule now (its overlap policy applies); the answer is the firing with its `job_id`. */
  cronRunNow(idOrName: string, call: CallOptions = {}): Promise<ScheduleRunNow> {
    return this.http.request({ method: 'POST', path: `/api/v1/mags-cron/${encodeURIComponent(idOrName)}/run`, answer: SCHEDULE_RUN, call });
  }

  /** A schedule's firings, newest first, with each job's status. */
  cronRuns(idOrName: string, opts: { limit?: number } = {}, call: CallOptions = {}): Promise<ScheduleRunList> {
    const q = opts.limit ? `?limit=${opts.limit}` : '';
    return this.http.request({ method: 'GET', path: `/api/v1/mags-cron/${encodeURIComponent(idOrName)}/runs${q}`, answer: SCHEDULE_RUNS, call });
  }

  /** Adds a webhook endpoint (`POST /api/v1/webhooks`); the answer's `secret` (`whsec_...`) is shown only here. */
  webhookCreate(url: string, opts: WebhookCreateOptions = {}, call: CallOptions = {}): Promise<WebhookCreated> {
    return this.http.request({ method: 'POST', path: '/api/v1/webhooks', body: { url, ...snakeBody(opts) }, answer: WEBHOOK_CREATED, call });
  }

  /** The caller's webhook endpoints (without secrets). */
  webhookList(call: CallOptions = {}): Promise<WebhookList> {
    return this.http.request({ method: 'GET', path: '/api/v1/webhooks', answer: WEBHOOK_LIST, call });
  }

  /** Changes an endpoint; `{ enabled: true }` re-enables one disabled after failures. */
  webhookUpdate(id: string, opts: { url?: string; events?: WebhookEndpoint['events']; description?: string | null; enabled?: boolean }, call: CallOptions = {}): Promise<WebhookEndpoint> {
    return this.http.request({ method: 'PATCH', path: `/api/v1/webhooks/${encodeURIComponent(id)}`, body: snakeBody(opts), answer: WEBHOOK, call });
  }

  /** Removes a webhook endpoint. */
  webhookDelete(id: string, call: CallOptions = {}): Promise<WebhookDeleted> {
    return this.http.request({ method: 'DELETE', path: `/api/v1/webhooks/${encodeURIComponent(id)}`, answer: WEBHOOK_DELETED, call });
  }

  /** Sends a `webhook.test` event to an endpoint. */
  webhookTest(id: string, call: CallOptions = {}): Promise<WebhookDelivery> {
    return this.http.request({ method: 'POST', path: `/api/v1/webhooks/${encodeURIComponent(id)}/test`, answer: WEBHOOK_DELIVERY, call });
  }

  /** An endpoint's delivery log, newest first. */
  webhookDeliveries(id: string, opts: { limit?: number } = {}, call: CallOptions = {}): Promise<WebhookDeliveryList> {
    const q = opts.limit ? `?limit=${opts.limit}` : '';
    return this.http.request({ method: 'GET', path: `/api/v1/webhooks/${encodeURIComponent(id)}/deliveries${q}`, answer: WEBHOOK_DELIVERIES, call });
  }

  /** Sends a delivery again, with the same webhook-id. */
  webhookRedeliver(id: string, deliveryId: string, call: CallOptions = {}): Promise<WebhookDelivery> {
    return this.http.request({ method: 'POST', path: `/api/v1/webhooks/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(deliveryId)}/redeliver`, answer: WEBHOOK_DELIVERY, call });
  }

  /** Creates or replaces the key that signs deliveries to jobs' own `webhookUrl`; shown only here. */
  webhookSigningKey(call: CallOptions = {}): Promise<WebhookSigningKey> {
    return this.http.request({ method: 'POST', path: '/api/v1/webhooks/signing-key', answer: WEBHOOK_SIGNING_KEY, call });
  }

}

