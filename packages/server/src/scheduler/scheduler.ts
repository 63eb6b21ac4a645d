import { performance } from 'node:perf_hooks';
import type { EndReason } from '@mags/shared';
import type { Logger } from 'pino';
import type { ExecRequest, ExecResult, OutputStream, Sandbox, SandboxLimits, SandboxPool } from '../runtime/driver.js';
import type { StdinHub } from '../services/stdin.js';
import type { Admission, JobResources } from '../services/admission.js';
import type { JobLogs } from '../services/job-logs.js';
import type { JobRunner } from '../services/jobs.js';
import type { Job, JobPatch, JobStore } from '../storage/metadata/store.js';
import { FairQueue } from './fair-queue.js';
import { placeJobFiles, type JobFiles } from './place-files.js';
import type { WorkspaceLease } from '../workspaces/service.js';
import type { MeterHandle } from '../services/usage.js';
import type { LiveManager, LiveSlots } from '../sandboxes/manager.js';

export interface SchedulerOptions {
  /** The jobs store (the scheduler's output goes through `logs`). */
  store: JobStore;
  logs: JobLogs;
  pool: SandboxPool;
  log: Logger;
  /** Limit of a job that sets none of its own. */
  jobTimeoutSeconds: number;
  /** Output stored per job; the rest is discarded after one truncation line. */
  maxOutputBytes: number;
  /** Jobs running at once; the rest wait in the queue as `pending`. */
  maxConcurrentJobs: number;
  /** Jobs of one user running at once (default: no cap beyond maxConcurrentJobs). */
  maxRunningJobsPerUser?: number;
  /** Whether a job's resources fit beside the running jobs'; absent = only the slot count limits. */
  admission?: Admission;
  /** Layers of jobs with `workspace_id` / `base_workspace_id` (absent: such jobs fail to start). */
  workspaces?: { open(job: Job, log: Logger): Promise<WorkspaceLease | undefined> };
  /** Uploaded files of jobs with `file_ids` (absent: such jobs fail to start). */
  files?: JobFiles;
  /** Meters each job's sandbox from start to release (absent: no usage records). */
  usage?: { track(job: Job, sandbox: Sandbox): Promise<MeterHandle> };
  /** Start latency and run time observations (absent: none). */
  metrics?: { sandboxReady(warm: boolean, seconds: number): void; jobEnded(status: string, seconds: number): void };
  /**
   * Lifecycle of persistent jobs' sandboxes: gets a persistent job's sandbox once it runs, keeps it
   * after a successful script, ends it on stop and frees hosts that are full (absent: persistent
   * jobs go to `sleeping` right after their script, as ephemeral ones end).
   */
  live?: Pick<LiveManager, 'adopt' | 'scriptEnded' | 'end' | 'relieve' | 'stopMetering'>;
  /** Told when a job's run ended (after the sandbox is gone and its workspace synced). */
  events?: { jobEnded(job: Job, status: 'completed' | 'error' | 'sleeping'): Promise<void> };
  /** Stdin uploads of jobs submitted with `stdin: true` (absent: every script's stdin is /dev/null). */
  stdin?: StdinHub;
}

/** Processes per sandbox (docs/sandboxes.md). */
export const DEFAULT_PIDS_LIMIT = 1024;

/**
 * Bytes each output line costs against `maxOutputBytes` on top of its bytes: every line is an
 * object in the logs answer, so 10 MiB of empty lines stop after ~160 k lines rather than 10 M.
 */
export const LINE_OVERHEAD_BYTES = 64;

/** Why a running script is stopped: its owner, the server shutting down, or its persistent job going to sleep. */
type EndCause = 'user' | 'shutdown' | 'sleep';

/**
 * Queued jobs keep their stored row in memory only while the queue is short (the warm path skips a
 * database read); a long queue holds ids and reads each job when it starts, so a flood of
 * submissions with 1 MiB scripts cannot exhaust memory.
 */
const QUEUE_INLINE_LIMIT = 64;

interface Queued {
  id: string;
  userId: string;
  res: JobResources;
  job?: Job;
}

interface Running {
  userId: string;
  res: JobResources;
  controller: AbortController;
  cause?: EndCause;
  /** Set when the script was stopped for a sleep: what to store with `sleeping`. */
  slept?: JobPatch;
  done: Promise<void>;
}

/**
 * Runs pending jobs: a submit wakes it at once (no polling). For each job it takes a sandbox from
 * the pool, runs the script with the job's environment and timeout, records the output and the
 * outcome, and gives the sandbox back. At start it reconciles jobs a previous process left behind.
 */
export class Scheduler implements JobRunner, LiveSlots {
  private readonly queue = new FairQueue<Queued>();
  private readonly running = new Map<string, Running>();
  /** Sandboxes of persistent jobs kept after their script (or woken): they hold slots like running jobs. */
  private readonly held = new Map<string, { userId: string; res: JobResources }>();
  private readonly runningPerUser = new Map<string, number>();
  /** Resources of the running jobs, summed. */
  private readonly inUse: JobResources = { memory_mb: 0, vcpus: 0, disk_gb: 0 };
  private accepting = false;
  /** Statuses `finish` stored, read by `run` to announce the end once the lease is closed. */
  private readonly ended = new Map<string, 'completed' | 'error' | 'sleeping'>();

  constructor(private readonly o: SchedulerOptions) {}

  /**
   * Reconciles and starts: `running` jobs of a previous process have no sandbox any more: ephemeral
   * ones end in `error`, persistent ones are `sleeping` on their workspace as last synced (the
   * lifecycle manager brings `no_sleep` ones back up); `pending` jobs are queued again.
   */
  async start(): Promise<void> {
    const now = new Date().toISOString();
    for (const job of await this.o.store.listJobsByStatus(['running'])) {
      if (job.persistent && this.o.live) {
        await this.o.logs.open(job.request_id);
        this.o.logs.append(job.request_id, 'system', `server restarted: the job is sleeping${job.workspace_id ? ` on workspace ${job.workspace_id} as last synced` : ''}`);
        await this.o.logs.flush();
        await this.o.store.updateJob(job.request_id, { status: 'sleeping', vm_id: null }, ['running']);
        this.o.log.warn({ jobId: job.request_id }, 'a persistent job of the previous server process is sleeping now');
        continue;
      }
      const message = 'server restarted while the job was running';
      await this.o.logs.open(job.request_id);
      this.o.logs.append(job.request_id, 'system', message);
      await this.o.logs.flush();
      await this.o.store.updateJob(job.request_id, { status: 'error', end_reason: 'server_shutdown', error_message: message, completed_at: now }, ['running']);
      this.o.log.warn({ jobId: job.request_id }, 'marked a job of the previous server process as failed');
    }
    this.accepting = true;
    for (const job of await this.o.store.listJobsByStatus(['pending'])) this.push(job);
    this.pump();
  }

  enqueue(job: Job): void {
    if (!this.accepting) return; // picked up from the database at the next start
    this.push(job);
    this.pump();
  }

  private push(job: Job): void {
    const entry: Queued = { id: job.request_id, userId: job.user_id, res: { memory_mb: job.memory_mb, vcpus: job.vcpus, disk_gb: job.disk_gb } };
    if (this.queue.size < QUEUE_INLINE_LIMIT) entry.job = job;
    this.queue.push(entry);
  }

  async stop(jobId: string): Promise<boolean> {
    const r = this.running.get(jobId);
    if (r) {
      r.cause ??= 'user';
      r.controller.abort();
      await r.done;
      // A persistent job whose script ended just before the abort landed: its sandbox is kept, end it there.
      if (this.o.live && (await this.o.live.end(jobId))) return true;
      // A job that went to sleep before the abort landed (its sandbox was being released) is the caller's to end.
      return (await this.o.store.getJob(jobId))?.status !== 'sleeping';
    }
    if (this.o.live && (await this.o.live.end(jobId))) return true;
    this.queue.remove(jobId);
    return false;
  }

  /** Jobs running now (persistent sandboxes kept after their script included) and waiting in the queue. */
  counts(): { running: number; queued: number } {
    return { running: this.running.size + this.held.size, queued: this.queue.size };
  }

  hold(job: Job): void {
    if (this.held.has(job.request_id)) return;
    const h = { userId: job.user_id, res: { memory_mb: job.memory_mb, vcpus: job.vcpus, disk_gb: job.disk_gb } };
    this.held.set(job.request_id, h);
    this.account(h.userId, h.res, 1);
  }

  /**
   * Holds a slot for a woken sandbox when one is free now (within MAGS_MAX_CONCURRENT_JOBS, the
   * user's MAGS_MAX_RUNNING_JOBS_PER_USER and the admission ratios); else says what is missing.
   */
  tryHold(job: Job): string | null {
    if (this.held.has(job.request_id)) return null;
    if (this.running.size + this.held.size >= this.o.maxConcurrentJobs) return `all ${this.o.maxConcurrentJobs} sandbox slots of this host are in use (MAGS_MAX_CONCURRENT_JOBS)`;
    const cap = this.o.maxRunningJobsPerUser ?? Infinity;
    if ((this.runningPerUser.get(job.user_id) ?? 0) >= cap) return `this user already runs ${cap} sandboxes at once (MAGS_MAX_RUNNING_JOBS_PER_USER)`;
    const short = this.o.admission?.shortfall(this.inUse, { memory_mb: job.memory_mb, vcpus: job.vcpus, disk_gb: job.disk_gb });
    if (short) return short;
    this.hold(job);
    return null;
  }

  free(jobId: string): void {
    const h = this.held.get(jobId);
    if (!h) return;
    this.held.delete(jobId);
    this.account(h.userId, h.res, -1);
    this.pump();
  }

  poke(): void {
    this.pump();
  }

  async sleepScript(jobId: string): Promise<void> {
    const r = this.running.get(jobId);
    if (!r) return;
    r.cause ??= 'sleep';
    r.controller.abort();
    await r.done;
  }

  /**
   * Stops taking jobs, cancels running ones (they end in `error` saying the server shut down) and
   * waits for their outcome to be stored. Queued jobs stay `pending` for the next start.
   */
  async shutdown(): Promise<void> {
    this.accepting = false;
    this.queue.clear();
    for (const r of this.running.values()) {
      r.cause ??= 'shutdown';
      r.controller.abort();
    }
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }

  /**
   * Starts queued jobs while slots are free: users in turn, each below their running cap. When the
   * next job's resources do not fit beside the running ones it waits (nobody overtakes it, so a
   * big job is never starved by small ones).
   */
  private pump(): void {
    const cap = this.o.maxRunningJobsPerUser ?? Infinity;
    while (this.accepting && this.queue.size > 0) {
      // A full host asks the lifecycle manager to put an idle persistent sandbox to sleep early.
      if (this.running.size + this.held.size >= this.o.maxConcurrentJobs) return this.o.live?.relieve();
      const next = this.queue.peek((userId) => (this.runningPerUser.get(userId) ?? 0) < cap);
      if (!next) return;
      if (this.o.admission && !this.o.admission.fits(this.inUse, next.res)) return this.o.live?.relieve();
      const queued = this.queue.shift(next.userId)!;
      const id = queued.id;
      if (this.running.has(id)) continue;
      const entry: Running = { userId: queued.userId, res: queued.res, controller: new AbortController(), done: Promise.resolve() };
      this.claim(id, entry, 1);
      entry.done = this.load(queued)
        .then((job) => (job ? this.run(job, entry) : undefined))
        .catch((err: unknown) => this.o.log.error({ err, jobId: id }, 'job runner failed'))
        .finally(() => {
          this.claim(id, entry, -1);
          this.pump();
        });
    }
  }

  /** Adds (+1) or removes (-1) a running job from the slot, per-user and resource counts. */
  private claim(id: string, r: Running, sign: 1 | -1): void {
    if (sign === 1) this.running.set(id, r);
    else this.running.delete(id);
    this.account(r.userId, r.res, sign);
  }

  /** Adds (+1) or removes (-1) one sandbox from the per-user and resource counts. */
  private account(userId: string, res: JobResources, sign: 1 | -1): void {
    const n = (this.runningPerUser.get(userId) ?? 0) + sign;
    if (n > 0) this.runningPerUser.set(userId, n);
    else this.runningPerUser.delete(userId);
    this.inUse.memory_mb += sign * res.memory_mb;
    this.inUse.vcpus += sign * res.vcpus;
    this.inUse.disk_gb += sign * res.disk_gb;
  }

  /** The queued job's row; undefined when it is gone or no longer pending (e.g. stopped). */
  private async load(q: Queued): Promise<Job | undefined> {
    if (q.job) return q.job;
    const job = await this.o.store.getJob(q.id);
    return job?.status === 'pending' ? job : undefined;
  }

  private async run(job: Job, entry: Running): Promise<void> {
    const id = job.request_id;
    const log = this.o.log.child({ jobId: id });
    const { signal } = entry.controller;
    let sandbox: Sandbox | undefined;
    let lease: WorkspaceLease | undefined;
    let meter: MeterHandle | undefined;
    const dequeuedAt = performance.now();
    let kept = false;
    try {
      if (signal.aborted) return await this.finishAborted(job, entry, null);
      const limits: SandboxLimits = { vcpus: job.vcpus, memoryMb: job.memory_mb, diskGb: job.disk_gb, pids: DEFAULT_PIDS_LIMIT };
      if (job.workspace_id || job.base_workspace_id) {
        try {
          if (!this.o.workspaces) throw new Error('this server has no workspace support');
          lease = await this.o.workspaces.open(job, log);
        } catch (err) {
          if (signal.aborted) return await this.finishAborted(job, entry, null);
          log.error({ err }, 'could not prepare the workspace');
          return await this.finish(job, 'error', { end_reason: 'sandbox_failed', error_message: `could not prepare the workspace: ${errorText(err)}` }, true);
        }
      }
      try {
        const layers = lease ? { workspaceLayerDir: lease.workspaceLayerDir, extraLowerDirs: lease.extraLowerDirs, imageVersion: lease.imageVersion } : {};
        const acquired = await this.o.pool.acquire({ limits, network: true, labels: { job: id, user: job.user_id }, ...layers });
        sandbox = acquired.sandbox;
        log.debug({ sandbox: sandbox.id, warm: acquired.warm }, 'sandbox acquired');
        this.o.metrics?.sandboxReady(acquired.warm, (performance.now() - dequeuedAt) / 1000);
      } catch (err) {
        if (signal.aborted) return await this.finishAborted(job, entry, null);
        log.error({ err }, 'could not get a sandbox');
        return await this.finish(job, 'error', { end_reason: 'sandbox_failed', error_message: `could not start a sandbox: ${errorText(err)}` }, true);
      }
      if (signal.aborted) return await this.finishAborted(job, entry, null);

      const startedAt = new Date();
      // Written before it is announced: the job is `running` from here.
      const claimed = await this.o.store.updateJob(id, { status: 'running', vm_id: sandbox.id, started_at: startedAt.toISOString() }, ['pending']);
      if (!claimed) {
        log.info('job left pending before it started (stopped); not running it');
        return;
      }
      await this.o.logs.open(id);
      for (const note of lease?.notes ?? []) this.o.logs.append(id, 'system', note);
      // A persistent job's sandbox is metered by the lifecycle manager from adopt() to its release.
      if (this.o.usage && !(job.persistent && this.o.live)) {
        meter = await this.o.usage.track(job, sandbox).catch((err: unknown) => {
          log.warn({ err }, 'usage metering could not start; this run is not metered');
          return undefined;
        });
      }
      if (job.persistent) this.o.live?.adopt(job, sandbox, lease);
      try {
        if (job.file_ids.length > 0 && !this.o.files) throw new Error('this server has no file uploads');
        if (this.o.files) await placeJobFiles(sandbox, this.o.files, job.user_id, job.file_ids, signal);
      } catch (err) {
        if (signal.aborted) return await this.finishAborted(job, entry, null);
        log.error({ err }, 'could not place the job\'s files');
        return await this.finish(job, 'error', { end_reason: 'sandbox_failed', error_message: errorText(err) }, true);
      }

      const timeoutSeconds = job.timeout_seconds ?? this.o.jobTimeoutSeconds;
      // A persistent job's script (often its app) has no limit of its own unless it sets one: idle, it sleeps.
      const timeoutMs = job.persistent && this.o.live && job.timeout_seconds === null ? undefined : timeoutSeconds * 1000;
      const cap = this.o.maxOutputBytes;
      let bytes = 0;
      let truncated = false;
      // Each byte costs one and each line LINE_OVERHEAD_BYTES more, so a flood of empty lines also hits the cap.
      const onData = (stream: OutputStream, data: Buffer, at: Date) => {
        if (truncated) return;
        const take = withinCap(data, cap - bytes);
        bytes += take.cost;
        this.o.logs.write(id, stream, take.bytes, at);
        if (take.bytes.length < data.length) {
          truncated = true;
          this.o.logs.endStreams(id, at);
          this.o.logs.append(id, 'system', `[output truncated: the job wrote more than ${cap} bytes; the rest is discarded]`);
        }
      };
      let result: ExecResult;
      try {
        result = await sandbox.exec({ script: job.script, env: job.environment, cwd: '/root', timeoutMs, signal, onData, ...this.inputOf(id, signal) }, () => {});
      } catch (err) {
        this.o.logs.endStreams(id);
        if (signal.aborted) return await this.finishAborted(job, entry, Date.now() - startedAt.getTime());
        log.error({ err }, 'sandbox failed while running the job');
        return await this.finish(job, 'error', { end_reason: 'sandbox_failed', error_message: `sandbox failed: ${errorText(err)}`, script_duration_ms: Date.now() - startedAt.getTime() }, true);
      }
      this.o.logs.endStreams(id);
      if (entry.cause) return await this.finishAborted(job, entry, result.durationMs);

      const duration = { script_duration_ms: Math.round(result.durationMs), end_reason: result.reason };
      switch (result.reason) {
        case 'exited':
          if (result.exitCode === 0) {
            if (job.persistent && this.o.live) {
              // A persistent job stays reachable after its script: the sandbox stays up, `running`.
              await this.keep(job, duration);
              kept = true;
              sandbox = undefined;
              lease = undefined;
              return;
            }
            // Without a lifecycle manager a persistent job goes to sleep right after its script.
            return await this.finish(job, job.persistent ? 'sleeping' : 'completed', { exit_code: 0, ...duration }, false);
          }
          return await this.finish(job, 'error', { exit_code: result.exitCode, error_message: `script exited with code ${result.exitCode}`, ...duration }, false);
        case 'timeout':
          return await this.finish(job, 'error', { exit_code: result.exitCode, error_message: `timed out after ${timeoutSeconds} s`, ...duration }, true);
        case 'oom':
          return await this.finish(job, 'error', { exit_code: result.exitCode, error_message: result.message ?? `ran out of memory (limit ${job.memory_mb} MiB)`, ...duration }, true);
        case 'signaled':
          return await this.finish(job, 'error', { exit_code: result.exitCode, error_message: result.message ?? `script was killed by signal ${result.signal ?? 'unknown'}`, ...duration }, true);
        case 'cancelled':
          return await this.finish(job, 'error', { exit_code: result.exitCode, error_message: result.message ?? 'the job was cancelled', ...duration }, true);
        case 'sandbox_failed':
        default:
          return await this.finish(job, 'error', { exit_code: result.exitCode, error_message: `sandbox failed: ${result.message ?? 'unknown error'}`, ...duration }, true);
      }
    } finally {
      // Read before the sandbox (and its cgroup counters) goes away.
      await meter?.end().catch((err: unknown) => log.warn({ err }, 'could not record the job\'s usage'));
      const slept = entry.cause === 'sleep';
      if (job.persistent && !kept) await this.o.live?.stopMetering(id);
      // Before the release: attach() no longer hands out this sandbox (or stops waiting for one).
      if (job.persistent && !slept && !kept) this.o.live?.scriptEnded(id, 'ended');
      // A job without a workspace is announced at once; a workspace job after its final sync (the
      // event lists the files the run changed).
      if (!lease) await this.announce(job);
      if (sandbox) {
        await this.o.pool.release(sandbox).catch((err: unknown) => log.error({ err, sandbox: sandbox!.id }, 'could not release the sandbox'));
      }
      // After the sandbox is gone: the layer is quiet for the final sync.
      await lease?.close();
      if (slept && job.persistent) {
        await this.storeSlept(job, entry.slept ?? {}).catch((err: unknown) => log.error({ err }, 'could not store the sleep of a job'));
        this.o.live?.scriptEnded(id, 'slept');
      }
      await this.announce(job);
    }
  }

  /** Stores `sleeping` for a job whose script was stopped for a sleep (sandbox gone, workspace synced). */
  private async storeSlept(job: Job, patch: JobPatch): Promise<void> {
    const id = job.request_id;
    await this.o.logs.open(id);
    this.o.logs.append(id, 'system', 'sleeping: idle while the script ran; the script was stopped and runs again on wake unless startup_command is set');
    await this.o.logs.flush();
    const changed = await this.o.store.updateJob(id, { ...patch, status: 'sleeping', vm_id: null }, ['running']);
    if (changed) {
      this.o.logs.end(id, { status: 'sleeping', exit_code: null, end_reason: null, error_message: null });
      this.ended.set(id, 'sleeping');
    }
  }

  /**
   * A persistent job's script succeeded: the outcome is stored with status `running` (followers of
   * the output end here) and the sandbox, lease and slot go to the lifecycle manager.
   */
  private async keep(job: Job, duration: { script_duration_ms: number; end_reason: EndReason }): Promise<void> {
    const id = job.request_id;
    await this.o.logs.flush();
    await this.o.store.updateJob(id, { exit_code: 0, ...duration }, ['running']);
    this.o.live!.scriptEnded(id, 'kept');
    this.o.logs.end(id, { status: 'running', exit_code: 0, end_reason: duration.end_reason, error_message: null });
    this.o.log.info({ jobId: id }, 'persistent job: script done, sandbox kept');
  }

  /** Tells the events hook that a job's run ended, once, with the status `finish` stored. */
  private async announce(job: Job): Promise<void> {
    const status = this.ended.get(job.request_id);
    if (!status) return;
    this.ended.delete(job.request_id);
    if (this.o.events) await this.o.events.jobEnded(job, status);
  }

  /** Stdin and terminal of a job submitted with `stdin` or `tty` (nothing for the others). */
  private inputOf(id: string, signal: AbortSignal): Pick<ExecRequest, 'stdin' | 'pty' | 'onStarted'> {
    const hub = this.o.stdin;
    if (!hub?.wants(id)) return {};
    return { stdin: hub.take(id, signal), pty: hub.ttyOf(id), onStarted: (control) => hub.started(id, control) };
  }

  private async finishAborted(job: Job, entry: Running, durationMs: number | null): Promise<void> {
    const duration = durationMs === null ? {} : { script_duration_ms: Math.round(durationMs) };
    if (entry.cause === 'sleep') {
      // The lifecycle manager put the job to sleep: stored by storeSlept once the sandbox is gone and the workspace synced.
      entry.slept = duration;
      return;
    }
    if (entry.cause === 'shutdown' && job.persistent && this.o.live) {
      // The next start wakes it (no_sleep) or a request does, on the workspace synced below.
      this.o.logs.append(job.request_id, 'system', 'server shut down while the script ran: the job is sleeping');
      return this.finish(job, 'sleeping', { end_reason: 'server_shutdown', vm_id: null, ...duration }, false);
    }
    if (entry.cause === 'shutdown') {
      return this.finish(job, 'error', { end_reason: 'server_shutdown', error_message: 'server shut down while the job was running', ...duration }, true);
    }
    this.o.logs.append(job.request_id, 'system', 'job stopped by user');
    return this.finish(job, 'completed', { end_reason: 'cancelled', ...duration }, false);
  }

  /**
   * Stores the outcome (output first, then the status: written before announced) and tells
   * followers. `systemLine` adds the error message as a `system` line of the output.
   */
  private async finish(job: Job, status: 'completed' | 'error' | 'sleeping', patch: JobPatch & { end_reason: EndReason }, systemLine: boolean): Promise<void> {
    const id = job.request_id;
    await this.o.logs.open(id);
    if (systemLine && patch.error_message) this.o.logs.append(id, 'system', patch.error_message);
    await this.o.logs.flush();
    const full: JobPatch = { ...patch, status };
    if (status !== 'sleeping') full.completed_at = new Date().toISOString();
    const changed = await this.o.store.updateJob(id, full, ['pending', 'running']);
    if (changed) this.ended.set(id, status);
    this.o.stdin?.drop(id);
    if (changed) this.o.logs.end(id, { status, exit_code: patch.exit_code ?? null, end_reason: patch.end_reason ?? null, error_message: patch.error_message ?? null });
    if (changed && patch.script_duration_ms !== undefined && patch.script_duration_ms !== null) this.o.metrics?.jobEnded(status, patch.script_duration_ms / 1000);
    this.o.log.info({ jobId: id, status, exitCode: patch.exit_code ?? null, error: patch.error_message }, 'job ended');
  }
}


function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The part of `data` that fits in `budget` when each byte costs one and each newline
 * LINE_OVERHEAD_BYTES more (the bytes, and what they cost).
 */
export function withinCap(data: Buffer, budget: number): { bytes: Buffer; cost: number } {
  let cost = 0;
  for (let pos = 0; pos < data.length; ) {
    const nl = data.indexOf(10, pos);
    const end = nl < 0 ? data.length : nl + 1;
    const segment = end - pos + (nl < 0 ? 0 : LINE_OVERHEAD_BYTES);
    if (cost + segment > budget) {
      const fit = Math.max(0, Math.min(end - pos, budget - cost));
      return { bytes: data.subarray(0, pos + fit), cost: cost + fit };
    }
    cost += segment;
    pos = end;
  }
  return { bytes: data, cost };
}
