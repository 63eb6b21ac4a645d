import type { Sandbox } from '../runtime/driver.js';
import type { Job } from '../storage/metadata/store.js';

/**
 * The seam between persistent sandboxes and everything that reaches into one: the proxy (public
 * URLs), exec, the SSH gateway, the files API and the web terminal. Those callers never hold a
 * Sandbox on their own; they attach to a persistent job through LiveSandboxes, which wakes it
 * when needed and counts the attachment as activity so the job does not freeze or sleep under
 * an open session.
 *
 * The lifecycle of a persistent job (docs/sandboxes.md, "Persistent sandboxes"):
 *   pending -> running (script, then idle with the sandbox kept) -> frozen (cgroup freezer,
 *   status stays `running`) -> sleeping (workspace synced, sandbox stopped) -> woken by attach()
 *   (thaw, or a new sandbox on the workspace running `startup_command`) -> ... -> stopped by the
 *   user (`completed`, end_reason `cancelled`).
 */

/** What a caller attaches for; logged, and counted per kind in the activity view. */
export type AttachPurpose = 'access' | 'proxy' | 'exec' | 'ssh' | 'files' | 'terminal';

/** Where a persistent job's sandbox is now, as the lifecycle manager sees it (no waking). */
export type LiveState =
  /** A sandbox is up and its processes run. */
  | 'running'
  /** A sandbox is up, frozen by the cgroup freezer; attach() thaws it in milliseconds. */
  | 'frozen'
  /** A sandbox is being started (first start or a wake from sleep). */
  | 'starting'
  /** No sandbox: the workspace is synced; attach() starts a new one. */
  | 'sleeping'
  /** The job ended (stopped, failed): nothing to attach to. */
  | 'ended';

/** One use of a running sandbox. The job does not freeze or sleep while any use is open. */
export interface LiveAttachment {
  readonly job: Job;
  /** The job's sandbox, running (thawed) at the time attach() resolved. */
  readonly sandbox: Sandbox;
  /** True when attach() had to wake the job (thaw or start); for logs and benchmarks. */
  readonly woke: 'no' | 'thawed' | 'started';
  /** Ends this use (idempotent). Idle time counts from the last release. */
  release(): void;
}

export interface AttachOptions {
  /** Cancels the wait for a wake (the caller's request went away). */
  signal?: AbortSignal;
  /** Upper bound for a wake in ms; on expiry attach() rejects with SANDBOX_START_TIMEOUT. */
  timeoutMs?: number;
}

export interface LiveSandboxes {
  /**
   * The running sandbox of a persistent job, waking it first when it is frozen or sleeping; a
   * pending job is waited for until its first sandbox is up (its script may still run). Rejects
   * with an AppError: JOB_NOT_RUNNING (409) when the job is not persistent or has ended,
   * SANDBOX_START_TIMEOUT (504) when a wake does not finish in time (the wake goes on),
   * SANDBOX_FAILED when the new sandbox cannot be created. Concurrent attach() calls on one
   * sleeping job share one wake. Every resolved attachment must be released.
   */
  attach(job: Job, purpose: AttachPurpose, opts?: AttachOptions): Promise<LiveAttachment>;
  /** Marks activity without holding the sandbox (e.g. a proxied request that just finished). */
  touch(jobId: string): void;
  /** The job's state without waking it. */
  state(jobId: string): LiveState;
  /** Called with a job id whenever a job's sandbox goes away or comes back (proxy route caches). */
  onChange(listener: (jobId: string, state: LiveState) => void): () => void;
}

/**
 * One kind of access to a persistent job, granted by `POST /api/v{1,2}/mags-jobs/{id}/access`
 * after the job was woken: port 22 goes to the SSH gateway's grant, any other port to the
 * proxy's. A server without the role answers 501 FEATURE_NOT_AVAILABLE for it.
 */
export interface AccessGrant {
  /**
   * Fields merged into the access answer after `success: true`: `{url, subdomain, port}` for a
   * URL, `{ssh_host, ssh_port, ssh_private_key}` for SSH. May update the job row (subdomain, url).
   */
  grant(job: Job, port: number, opts: AccessOptions): Promise<Record<string, unknown>>;
}

export interface AccessOptions {
  /** URL auth mode asked for (`public` as Mags by default, or `token`). */
  auth?: 'public' | 'token';
  /** Host the client used to reach the API (for answers that name a host, e.g. ssh_host). */
  requestHost?: string;
}
