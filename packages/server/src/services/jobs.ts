import { JOB_LIMITS, TERMINAL_STATUSES, isTerminalStatus, type JobStatus, type LogStream } from '@mags/shared';
import type { Logger } from 'pino';
import type { LogLine } from '../storage/logs/store.js';
import type { Job, JobListFilter, JobStore, User } from '../storage/metadata/store.js';
import type { Admission } from './admission.js';
import { AppError } from './errors.js';
import { outcomeOf, type JobLogs } from './job-logs.js';
import { LogFeed, type LogFeedOptions } from './log-feed.js';
import { RawFeed } from './raw-feed.js';
import type { JobFeed } from './job-feed.js';
import type { StdinHub } from './stdin.js';
import { newId } from './tokens.js';
import type { AccessGrant, AccessOptions, LiveSandboxes } from '../sandboxes/live.js';

/** Queued jobs one user may have when the daemon sets no other limit. */
export const DEFAULT_MAX_PENDING_JOBS_PER_USER = 1000;

/** What a client may set when submitting a job (already type-checked by the API layer). */
export interface SubmitInput {
  script: string;
  type: 'inline';
  name?: string | null;
  workspace_id?: string | null;
  base_workspace_id?: string | null;
  persistent?: boolean | null;
  no_sleep?: boolean | null;
  startup_command?: string | null;
  environment?: Record<string, string> | null;
  file_ids?: string[] | null;
  /** The script's stdin comes from `PUT .../stdin` (ours). */
  stdin?: boolean | null;
  /** Run the script on a terminal of this size; its input comes from `PUT .../stdin` (ours). */
  tty?: { cols: number; rows: number } | null;
  disk_gb?: number | null;
  vcpus?: number | null;
  memory_mb?: number | null;
  rootfs_type?: string | null;
  timeout_seconds?: number | null;
  /** Where the job's completion webhook goes (ours). */
  webhook_url?: string | null;
}

/** Runs jobs: the scheduler implements it. */
export interface JobRunner {
  /** Queues a stored `pending` job; it starts as soon as a slot is free. */
  enqueue(job: Job): void;
  /**
   * Cancels a job this runner is running or has queued and resolves once its final status is
   * stored; false when the runner does not hold it.
   */
  stop(jobId: string): Promise<boolean>;
}

/** Checks a job's `webhook_url` (WebhooksService implements it). */
export interface WebhookAdmission {
  /** WEBHOOK_TARGET_REFUSED for unsafe targets; VALIDATION_ERROR when the user has no signing key. */
  checkJobTarget(userId: string, url: string): Promise<void>;
}

/** Admits submissions that name workspaces (WorkspaceService implements it). */
export interface WorkspaceAdmission {
  /** Checks the workspace fields and runs `insert` unless the workspace is busy (WORKSPACE_BUSY). */
  admit<T>(userId: string, workspace: string | null, base: string | null, insert: () => Promise<T>): Promise<T>;
}

/** Checks the uploaded files a submission names (UploadsService implements it). */
export interface FileAdmission {
  /** FILE_NOT_FOUND naming the first id that is not one of the user's files. */
  checkIds(userId: string, ids: readonly string[]): Promise<void>;
}

/** Per-user quotas an admin set (UsageMeter implements it). */
export interface QuotaCheck {
  /** QUOTA_EXCEEDED naming the quota when a new job would go beyond one. */
  checkSubmit(user: User, opts: { workspace: boolean }): Promise<void>;
}

/** Persistent jobs' sandboxes and the grants of the access call. */
export interface PersistentDeps {
  live: LiveSandboxes & { updated?(job: Job): void };
  /** Port 22 goes to `ssh`, any other port to `url`; absent: that access answers 501. */
  access?: { url?: AccessGrant; ssh?: AccessGrant };
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Job submission, lookup, logs, settings and stop; ownership is checked on every call. */
export class JobsService {
  constructor(
    private readonly store: JobStore,
    private readonly logs: JobLogs,
    private readonly runner: JobRunner,
    private readonly log: Logger,
    private readonly limits: { maxPendingJobsPerUser: number; admission?: Admission; quota?: QuotaCheck } = { maxPendingJobsPerUser: DEFAULT_MAX_PENDING_JOBS_PER_USER },
    private readonly workspaces?: WorkspaceAdmission,
    private readonly files?: FileAdmission,
    private readonly persistent?: PersistentDeps,
    private readonly webhooks?: WebhookAdmission,
    private readonly stdin?: StdinHub,
  ) {}

  async submit(user: User, input: SubmitInput, apiVersion: 1 | 2): Promise<Job> {
    const scriptBytes = Buffer.byteLength(input.script, 'utf8');
    if (scriptBytes > JOB_LIMITS.scriptMaxBytes) {
      throw new AppError(
        'PAYLOAD_TOO_LARGE',
        `script is ${scriptBytes} bytes; the limit is ${JOB_LIMITS.scriptMaxBytes} bytes (1 MiB)`,
        'Put large data in a file and upload it, or fetch it from inside the script.',
      );
    }
    if (input.script.trim() === '') throw new AppError('VALIDATION_ERROR', 'script: must not be empty');
    const env = input.environment ?? {};
    const keys = Object.keys(env);
    if (keys.length > JOB_LIMITS.environmentMaxVars) {
      throw new AppError('VALIDATION_ERROR', `environment: at most ${JOB_LIMITS.environmentMaxVars} variables are allowed`);
    }
    for (const k of keys) {
      if (!ENV_NAME.test(k)) throw new AppError('VALIDATION_ERROR', `environment: "${k.slice(0, 64)}" is not a valid variable name (letters, digits, _; not starting with a digit)`);
      if (Buffer.byteLength(env[k]!, 'utf8') > JOB_LIMITS.environmentValueMaxBytes) {
        throw new AppError('VALIDATION_ERROR', `environment: the value of ${k} is larger than ${JOB_LIMITS.environmentValueMaxBytes} bytes`);
      }
    }
    if (input.no_sleep && !input.persistent) {
      throw new AppError('VALIDATION_ERROR', 'no_sleep: needs "persistent": true', 'no_sleep keeps a persistent job awake; ephemeral jobs end with their script.');
    }
    if ((input.stdin || input.tty) && !this.stdin) throw new AppError('FEATURE_NOT_AVAILABLE', 'stdin: this server cannot pass stdin to jobs');
    if (input.file_ids && input.file_ids.length > 0) {
      if (!this.files) throw new AppError('FEATURE_NOT_AVAILABLE', 'file_ids: file uploads are not available on this server', 'Fetch files from inside the script (curl, git).');
      await this.files.checkIds(user.id, input.file_ids);
    }
    if (input.webhook_url) {
      if (!this.webhooks) throw new AppError('FEATURE_NOT_AVAILABLE', 'webhook_url: webhooks are not available on this server');
      await this.webhooks.checkJobTarget(user.id, input.webhook_url);
    }
    this.limits.admission?.checkJob({
      memory_mb: input.memory_mb ?? JOB_LIMITS.defaultMemoryMb,
      vcpus: input.vcpus ?? JOB_LIMITS.defaultVcpus,
      disk_gb: input.disk_gb ?? JOB_LIMITS.defaultDiskGb,
    });
    await this.limits.quota?.checkSubmit(user, { workspace: Boolean(input.workspace_id) });
    const waiting = await this.store.countUserJobs(user.id, ['pending']);
    if (waiting >= this.limits.maxPendingJobsPerUser) {
      throw new AppError(
        'RATE_LIMITED',
        `You have ${waiting} jobs waiting to start (the limit is ${this.limits.maxPendingJobsPerUser}); retry when some have started`,
        'Stop jobs you no longer need with POST /api/v1/mags-jobs/{id}/stop.',
      );
    }
    const now = new Date().toISOString();
    const job: Job = {
      request_id: newId(),
      user_id: user.id,
      // Clients send "" for "none"; store null so "" never becomes a name to look up.
      name: input.name || null,
      workspace_id: input.workspace_id || null,
      base_workspace_id: input.base_workspace_id || null,
      type: 'inline',
      script: input.script,
      persistent: input.persistent ?? false,
      no_sleep: input.no_sleep ?? false,
      startup_command: input.startup_command || null,
      environment: env,
      file_ids: input.file_ids ?? [],
      disk_gb: input.disk_gb ?? JOB_LIMITS.defaultDiskGb,
      vcpus: input.vcpus ?? JOB_LIMITS.defaultVcpus,
      memory_mb: input.memory_mb ?? JOB_LIMITS.defaultMemoryMb,
      rootfs_type: input.rootfs_type || null,
      timeout_seconds: input.timeout_seconds ?? null,
      api_version: apiVersion,
      status: 'pending',
      exit_code: null,
      end_reason: null,
      error_message: null,
      vm_id: null,
      host: null,
      subdomain: null,
      url: null,
      script_duration_ms: null,
      created_at: now,
      started_at: null,
      completed_at: null,
      updated_at: now,
      webhook_url: input.webhook_url || null,
    };
    if (this.workspaces) await this.workspaces.admit(user.id, job.workspace_id, job.base_workspace_id, () => this.store.insertJob(job));
    else await this.store.insertJob(job);
    if (input.stdin || input.tty) this.stdin!.expect(job.request_id, input.tty ?? undefined);
    this.runner.enqueue(job);
    this.log.debug({ jobId: job.request_id, userId: user.id, apiVersion }, 'job submitted');
    return job;
  }

  async list(user: User, page: number, pageSize: number, filter: JobListFilter = {}): Promise<{ jobs: Job[]; total: number }> {
    const since = filter.createdSince ? new Date(filter.createdSince).toISOString() : undefined;
    return this.store.listJobs(user.id, (page - 1) * pageSize, pageSize, { statuses: filter.statuses, createdSince: since });
  }

  /** One of the user's jobs by request id, name or workspace id; JOB_NOT_FOUND otherwise. */
  async get(user: User, ref: string): Promise<Job> {
    const job = ref === '' ? undefined : await this.store.findJobForUser(user.id, ref);
    if (!job) {
      throw new AppError('JOB_NOT_FOUND', `No job of yours has request id, name or workspace id "${clip(ref)}"`, 'List your jobs with GET /api/v1/mags-jobs.');
    }
    return job;
  }

  /**
   * Lines of a job after `afterSeq` (at most `limit`), read from the store a page at a time so a
   * long log is never held whole. Ownership is checked before the first page.
   */
  async logPages(user: User, ref: string, afterSeq: number, limit: number, pageLines = 1000, tail?: number): Promise<AsyncIterable<LogLine[]>> {
    const job = await this.get(user, ref);
    // The last `tail` lines: start after the seq that leaves that many.
    if (tail !== undefined) afterSeq = Math.max(afterSeq, (await this.logs.maxSeq(job.request_id)) - tail);
    const logs = this.logs;
    return (async function* pages() {
      let last = afterSeq;
      for (let left = limit; left > 0; ) {
        const page = await logs.read(job.request_id, last, Math.min(pageLines, left));
        if (page.length === 0) return;
        yield page;
        last = page[page.length - 1]!.seq;
        left -= page.length;
      }
    })();
  }

  /**
   * Follows a job's output from `afterSeq`: the feed hands out stored lines, then live lines, then
   * one end when the job ends (or a persistent job's script has ended: its sandbox stays up, or
   * it sleeps). The caller closes it.
   */
  async follow(user: User, ref: string, afterSeq: number, opts?: LogFeedOptions): Promise<LogFeed> {
    const job = await this.get(user, ref);
    return this.endIfEnded(new LogFeed(this.logs, job.request_id, afterSeq, opts));
  }

  /**
   * A job's raw output bytes (one stream, or all in the order they were read); with `follow` the
   * feed waits for more and ends when the job ends. The caller closes it.
   */
  async raw(user: User, ref: string, opts: { stream?: LogStream; follow: boolean }): Promise<RawFeed> {
    const job = await this.get(user, ref);
    return this.endIfEnded(new RawFeed(this.logs, job.request_id, opts));
  }

  /**
   * Tells a feed that just subscribed whether its job already ended. Subscribe first, then read the
   * status: an end in between reaches the feed either way.
   */
  private async endIfEnded<F extends JobFeed<unknown>>(feed: F): Promise<F> {
    try {
      const fresh = await this.store.getJob(feed.jobId);
      if (fresh && followEnds(fresh)) feed.endWith(outcomeOf(fresh));
    } catch (err) {
      feed.close();
      throw err;
    }
    return feed;
  }

  /**
   * The stdin upload of a job submitted with `stdin: true`: the script reads `body` as it is sent;
   * resolves with the bytes its stdin took once it reached EOF or the job ended.
   */
  async putStdin(user: User, ref: string, body: AsyncIterable<Buffer>): Promise<{ bytes: number }> {
    const job = await this.get(user, ref);
    if (isTerminalStatus(job.status)) throw new AppError('JOB_NOT_RUNNING', `Job ${job.request_id} already ended (${job.status})`);
    if (!this.stdin) throw new AppError('FEATURE_NOT_AVAILABLE', 'this server cannot pass stdin to jobs');
    return this.stdin.provide(job.request_id, body);
  }

  /** New terminal size of a job submitted with `tty`. */
  async resize(user: User, ref: string, cols: number, rows: number): Promise<void> {
    const job = await this.get(user, ref);
    if (isTerminalStatus(job.status)) throw new AppError('JOB_NOT_RUNNING', `Job ${job.request_id} already ended (${job.status})`);
    if (!this.stdin) throw new AppError('FEATURE_NOT_AVAILABLE', 'this server has no job terminals');
    this.stdin.resize(job.request_id, cols, rows);
  }

  async update(user: User, ref: string, patch: { startup_command?: string | null; no_sleep?: boolean | null }): Promise<Job> {
    const job = await this.get(user, ref);
    if (patch.no_sleep && !job.persistent) {
      throw new AppError('INVALID_STATE', 'no_sleep: only a persistent job can be kept awake', 'Submit the job with "persistent": true.');
    }
    const changes: { startup_command?: string | null; no_sleep?: boolean } = {};
    if (patch.startup_command !== undefined) changes.startup_command = patch.startup_command;
    if (patch.no_sleep !== undefined && patch.no_sleep !== null) changes.no_sleep = patch.no_sleep;
    if (Object.keys(changes).length > 0) await this.store.updateJob(job.request_id, changes);
    const fresh = (await this.store.getJob(job.request_id))!;
    this.persistent?.live.updated?.(fresh);
    return fresh;
  }

  /**
   * Stops a job: a queued one never starts, a running one is cancelled, a sleeping one ends.
   * Stopping a job that already ended changes nothing. Resolves with the job's final state.
   */
  async stop(user: User, ref: string): Promise<Job> {
    const job = await this.get(user, ref);
    const id = job.request_id;
    if (isTerminalStatus(job.status)) return job;
    const held = await this.runner.stop(id);
    if (!held) {
      const now = new Date().toISOString();
      await this.logs.open(id);
      this.logs.append(id, 'system', 'job stopped by user');
      await this.logs.flush();
      const patch = { status: 'completed', end_reason: job.end_reason ?? 'cancelled', completed_at: now } as const;
      const changed = await this.store.updateJob(id, patch, ['pending', 'running', 'sleeping']);
      this.stdin?.drop(id);
      if (changed) this.logs.end(id, { ...patch, exit_code: job.exit_code, error_message: job.error_message });
    }
    return (await this.store.getJob(id))!;
  }

  /** Deletes a job that ended (`completed` or `error`) and its output; a job still queued, running or sleeping is refused. */
  async remove(user: User, ref: string): Promise<Job> {
    const job = await this.get(user, ref);
    const refuse = (status: JobStatus) =>
      new AppError('CONFLICT', `Job ${job.request_id} is ${status}; only a job that ended can be deleted`, `Stop it first: POST /api/v1/mags-jobs/${job.request_id}/stop (mags stop ${job.request_id}).`);
    if (!isTerminalStatus(job.status)) throw refuse(job.status);
    if (!(await this.store.deleteJob(job.request_id, TERMINAL_STATUSES))) {
      const now = await this.store.getJob(job.request_id);
      if (now) throw refuse(now.status);
    }
    this.log.info({ jobId: job.request_id, userId: user.id }, 'job deleted');
    return job;
  }

  /**
   * Where a persistent job's sandbox is (running, frozen, starting, sleeping); null for ephemeral
   * jobs and jobs that are pending or ended.
   */
  sandboxState(job: Job): 'running' | 'frozen' | 'starting' | 'sleeping' | null {
    if (!job.persistent || isTerminalStatus(job.status) || job.status === 'pending') return null;
    const state = this.persistent?.live.state(job.request_id);
    if (state === undefined || state === 'ended') return job.status === 'sleeping' ? 'sleeping' : null;
    return state;
  }

  /**
   * URL (any port) or SSH (port 22) access to a persistent job that has not ended: wakes it (the
   * access call counts as activity), then the grant of that kind answers. A server without the
   * grant answers 501 FEATURE_NOT_AVAILABLE.
   */
  async access(user: User, ref: string, port: number, opts: AccessOptions = {}): Promise<Record<string, unknown> & { success: true }> {
    const job = await this.get(user, ref);
    const what = port === 22 ? 'SSH access' : 'URL access';
    if (!job.persistent) {
      throw new AppError('INVALID_STATE', `${what} needs a persistent job; job ${job.request_id} ends with its script`, 'Submit the job with "persistent": true (mags run -p).');
    }
    if (isTerminalStatus(job.status)) {
      throw new AppError('JOB_NOT_RUNNING', `Job ${job.request_id} has ended (${job.status}); ${what} needs a running or sleeping job`, 'Start it again: mags run -p ...');
    }
    const live = this.persistent?.live;
    if (!live) throw new AppError('FEATURE_NOT_AVAILABLE', 'Persistent sandboxes are not available on this server', 'Run the job without --url for now.');
    const attached = await live.attach(job, 'access');
    try {
      const grant = port === 22 ? this.persistent?.access?.ssh : this.persistent?.access?.url;
      if (!grant) {
        if (port === 22) throw new AppError('FEATURE_NOT_AVAILABLE', 'SSH access is not available on this server: it runs without the SSH gateway', 'The admin enables it with MAGS_SSH_PORT; meanwhile use POST .../exec (mags exec).');
        throw new AppError('FEATURE_NOT_AVAILABLE', 'URL access is not available on this server', 'This server runs without the public-URL proxy; run the job without --url.');
      }
      const fresh = (await this.store.getJob(job.request_id)) ?? attached.job;
      return { success: true as const, ...(await grant.grant(fresh, port, opts)) };
    } finally {
      attached.release();
    }
  }
}

/** Whether a follower's stream ends for a job in this state: it ended, sleeps, or its persistent script is done. */
export function followEnds(job: Pick<Job, 'status' | 'persistent' | 'exit_code'>): boolean {
  return isTerminalStatus(job.status) || job.status === 'sleeping' || (job.persistent && job.status === 'running' && job.exit_code !== null);
}

function clip(s: string): string {
  return s.length > 80 ? s.slice(0, 80) + '...' : s;
}
