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

type EndCause = 'user' | 'shutdown';

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
  done: Promise<void>;
}

/**
 * Runs pending jobs: a submit wakes it at once (no polling). For each job it takes a sandbox from
 * the pool, runs the script with the job's environment and timeout, records the output and the
 * outcome, and gives the sandbox back. At start it reconciles jobs a previous process left behind.
 */
export class Scheduler implements JobRunner {
  private readonly queue = new FairQueue<Queued>();
  private readonly running = new Map<string, Running>();
  private readonly runningPerUser = new Map<string, number>();
  /** Resources of the running jobs, summed. */
  private readonly inUse: JobResources = { memory_mb: 0, vcpus: 0, disk_gb: 0 };
  private accepting = false;

  constructor(private readonly o: SchedulerOptions) {}

  /**
   * Reconciles and starts: `running` jobs of a previous process have no sandbox any more and end
   * in `error`; `pending` jobs are queued again.
   */
  async start(): Promise<void> {
    const now = new Date().toISOString();
    for (const job of await this.o.store.listJobsByStatus(['running'])) {
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
      // A job that went to sleep before the abort landed (its sandbox was being released) is the caller's to end.
      return (await this.o.store.getJob(jobId))?.status !== 'sleeping';
    }
    this.queue.remove(jobId);
    return false;
  }

  /** Jobs running now and waiting in the queue. */
  counts(): { running: number; queued: number } {
    return { running: this.running.size, queued: this.queue.size };
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
    while (this.accepting && this.running.size < this.o.maxConcurrentJobs && this.queue.size > 0) {
      const next = this.queue.peek((userId) => (this.runningPerUser.get(userId) ?? 0) < cap);
      if (!next) return;
      if (this.o.admission && !this.o.admission.fits(this.inUse, next.res)) return;
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
    const n = (this.runningPerUser.get(r.userId) ?? 0) + sign;
    if (n > 0) this.runningPerUser.set(r.userId, n);
    else this.runningPerUser.delete(r.userId);
    this.inUse.memory_mb += sign * r.res.memory_mb;
    this.inUse.vcpus += sign * r.res.vcpus;
    this.inUse.disk_gb += sign * r.res.disk_gb;
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
      try {
        if (job.file_ids.length > 0 && !this.o.files) throw new Error('this server has no file uploads');
        if (this.o.files) await placeJobFiles(sandbox, this.o.files, job.user_id, job.file_ids, signal);
      } catch (err) {
        if (signal.aborted) return await this.finishAborted(job, entry, null);
        log.error({ err }, 'could not place the job\'s files');
        return await this.finish(job, 'error', { end_reason: 'sandbox_failed', error_message: errorText(err) }, true);
      }

      const timeoutSeconds = job.timeout_seconds ?? this.o.jobTimeoutSeconds;
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
        result = await sandbox.exec({ script: job.script, env: job.environment, cwd: '/root', timeoutMs: timeoutSeconds * 1000, signal, onData, ...this.inputOf(id, signal) }, () => {});
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
            // A persistent job stays reachable after its script: it goes to sleep, not to completed.
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
      if (sandbox) {
        await this.o.pool.release(sandbox).catch((err: unknown) => log.error({ err, sandbox: sandbox!.id }, 'could not release the sandbox'));
      }
      // After the sandbox is gone: the layer is quiet for the final sync.
      await lease?.close();
    }
  }

  /** Stdin and terminal of a job submitted with `stdin` or `tty` (nothing for the others). */
  private inputOf(id: string, signal: AbortSignal): Pick<ExecRequest, 'stdin' | 'pty' | 'onStarted'> {
    const hub = this.o.stdin;
    if (!hub?.wants(id)) return {};
    return { stdin: hub.take(id, signal), pty: hub.ttyOf(id), onStarted: (control) => hub.started(id, control) };
  }

  private async finishAborted(job: Job, entry: Running, durationMs: number | null): Promise<void> {
    const duration = durationMs === null ? {} : { script_duration_ms: Math.round(durationMs) };
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
    this.o.stdin?.drop(id);
    if (changed) this.o.logs.end(id, { status, exit_code: patch.exit_code ?? null, end_reason: patch.end_reason ?? null, error_message: patch.error_message ?? null });
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
