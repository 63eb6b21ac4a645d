/**
 * The lifecycle of persistent jobs' sandboxes (docs/sandboxes.md, "Persistent sandboxes"): the
 * scheduler hands a persistent job's sandbox over once it runs (adopt) and leaves it here after a
 * successful script (scriptEnded). This manager freezes it when idle, puts it to sleep (workspace
 * synced, sandbox destroyed, status `sleeping`; a script still running, e.g. a server started as
 * the script, is stopped through the scheduler), wakes it on attach() (thaw, or a new sandbox on
 * the workspace running `startup_command`, or the script again when it never finished and there is
 * no startup_command), and ends it on stop. Every transition of one job runs in order on that
 * job's chain, so a sleep and a wake never overlap.
 */
import { isTerminalStatus } from '@mags/shared';
import type { Logger } from 'pino';
import { LineSplitter } from '../guest/client.js';
import type { OutputStream, Sandbox, SandboxPool, SandboxProcess } from '../runtime/driver.js';
import { AppError } from '../services/errors.js';
import type { JobLogs } from '../services/job-logs.js';
import { DEFAULT_PIDS_LIMIT, LINE_OVERHEAD_BYTES } from '../scheduler/scheduler.js';
import type { Job, JobStore } from '../storage/metadata/store.js';
import type { MeterHandle } from '../services/usage.js';
import type { WorkspaceLease } from '../workspaces/service.js';
import { IdleClock, type IdleSettings } from './idle.js';
import type { AttachOptions, AttachPurpose, LiveAttachment, LiveSandboxes, LiveState } from './live.js';

/** Run slots a live sandbox holds (the scheduler implements it: sandboxes count like running jobs). */
export interface LiveSlots {
  /** Counts a sandbox of this job against the concurrency and resource limits. */
  hold(job: Job): void;
  /** hold() when the sandbox fits beside the running ones now; else what is missing (nothing held). */
  tryHold(job: Job): string | null;
  /** Gives the job's slot back (the scheduler may start a queued job). */
  free(jobId: string): void;
  /** Something changed that may let a queued job start (e.g. a sandbox froze and may be put to sleep). */
  poke(): void;
  /**
   * Puts a job to sleep whose script still runs: the scheduler stops the script, destroys the
   * sandbox, syncs the workspace, stores `sleeping` and calls scriptEnded(id, 'slept').
   */
  sleepScript(jobId: string): Promise<void>;
}

export interface LiveManagerOptions {
  store: JobStore;
  logs: JobLogs;
  pool: SandboxPool;
  /** Opens a job's workspace layers for a new sandbox (WorkspaceService). */
  workspaces?: { open(job: Job, log: Logger): Promise<WorkspaceLease | undefined> };
  log: Logger;
  idle: IdleSettings;
  /** Longest a wake may take before attach() rejects with SANDBOX_START_TIMEOUT (default 60 s). */
  wakeTimeoutMs?: number;
  /**
   * Longest a wake waits for room on a full host (idle sandboxes are put to sleep meanwhile) before
   * it fails with CAPACITY_EXHAUSTED (default 10 s, and never past half the wake timeout).
   */
  capacityWaitMs?: number;
  /** How often idle sandboxes are checked (default: a quarter of the shortest window, 20 ms to 1 s). */
  tickMs?: number;
  /** Milliseconds clock (default Date.now). */
  now?: () => number;
  /** Output of one wake's startup process stored at most (each line + LINE_OVERHEAD_BYTES); default 10 MiB. */
  maxOutputBytes?: number;
  /** Told when a job goes to sleep here (webhook `job.sleeping`). */
  events?: { jobEnded(job: Job, status: 'sleeping'): Promise<void> };
  /** Meters each sandbox of a persistent job from adopt or wake to its release (absent: not metered). */
  usage?: { track(job: Job, sandbox: Sandbox): Promise<MeterHandle> };
}

/** Default bound of a wake. */
export const DEFAULT_WAKE_TIMEOUT_MS = 60_000;
export const DEFAULT_CAPACITY_WAIT_MS = 10_000;

interface Entry {
  id: string;
  job: Job;
  state: LiveState;
  sandbox?: Sandbox;
  lease?: WorkspaceLease;
  idle: IdleClock;
  /** The job's script still runs (the scheduler owns the outcome; the job counts as active). */
  scriptRunning: boolean;
  /** Whether this manager holds a run slot for the sandbox. */
  holdsSlot: boolean;
  /** Transitions of this job, one after another. */
  chain: Promise<unknown>;
  /** A freeze or sleep decided by the idle check is waiting on the chain. */
  queued?: boolean;
  /** The thaw or wake in flight that attach() calls share. */
  ready?: Promise<LiveAttachment['woke']>;
  startup?: SandboxProcess;
  /** Attach calls waiting for a pending job's first sandbox. */
  waiters: Array<() => void>;
  /** Usage metering of the current sandbox (resolves undefined when metering could not start). */
  meter?: Promise<MeterHandle | undefined>;
}

export class LiveManager implements LiveSandboxes {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<(jobId: string, state: LiveState) => void>();
  private slots: LiveSlots = { hold: () => {}, tryHold: () => null, free: () => {}, poke: () => {}, sleepScript: async () => {} };
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private relieving = false;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly o: LiveManagerOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Connects the run slots (the scheduler is built after this manager). */
  useSlots(slots: LiveSlots): void {
    this.slots = slots;
  }

  // ---- LiveSandboxes ----

  async attach(job: Job, purpose: AttachPurpose, opts: AttachOptions = {}): Promise<LiveAttachment> {
    if (!job.persistent) {
      // The code live.ts promises its callers (409); the access call answers 422 before it gets here.
      throw new AppError('JOB_NOT_RUNNING', `Job ${job.request_id} is not persistent: its sandbox ends with its script`, 'Submit the job with "persistent": true (mags run -p).');
    }
    const entry = await this.entryFor(job);
    const timeoutMs = opts.timeoutMs ?? this.o.wakeTimeoutMs ?? DEFAULT_WAKE_TIMEOUT_MS;
    entry.idle.attach(this.now());
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      entry.idle.release(this.now());
    };
    try {
      const woke = await bounded(this.ready(entry), timeoutMs, opts.signal, entry.id);
      const sandbox = entry.sandbox;
      if (!sandbox || entry.state !== 'running') throw ended(entry.job);
      this.o.log.debug({ jobId: entry.id, purpose, woke }, 'attached');
      return { job: entry.job, sandbox, woke, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  touch(jobId: string): void {
    this.entries.get(jobId)?.idle.touch(this.now());
  }

  state(jobId: string): LiveState {
    return this.entries.get(jobId)?.state ?? 'ended';
  }

  onChange(listener: (jobId: string, state: LiveState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Attachments open on a job now (tests, status). */
  attachments(jobId: string): number {
    return this.entries.get(jobId)?.idle.attachments ?? 0;
  }

  // ---- the scheduler's side ----

  /** A persistent job's first sandbox is up and its script starts: attach() hands it out from now. */
  adopt(job: Job, sandbox: Sandbox, lease: WorkspaceLease | undefined): void {
    const entry = this.entries.get(job.request_id) ?? this.newEntry(job, 'starting');
    Object.assign(entry, { job: { ...job, status: 'running', vm_id: sandbox.id }, sandbox, lease, scriptRunning: true });
    this.startMetering(entry, sandbox);
    this.setState(entry, 'running');
    for (const w of entry.waiters.splice(0)) w();
  }

  /**
   * The script of an adopted job ended. `kept`: it succeeded and the sandbox stays up, now owned
   * here (the slot too). `slept`: it was stopped for a sleep (sandbox gone, workspace synced, status
   * stored). `ended`: the scheduler releases the sandbox and stores the outcome.
   */
  scriptEnded(jobId: string, outcome: 'kept' | 'slept' | 'ended'): void {
    const entry = this.entries.get(jobId);
    if (!entry) return;
    if (outcome === 'ended') {
      this.forget(entry);
      return;
    }
    if (outcome === 'slept') {
      Object.assign(entry, { scriptRunning: false, sandbox: undefined, lease: undefined, startup: undefined });
      entry.job = { ...entry.job, status: 'sleeping', vm_id: null };
      this.setState(entry, 'sleeping');
      return;
    }
    entry.scriptRunning = false;
    entry.job = { ...entry.job, exit_code: 0, end_reason: 'exited' };
    entry.idle.touch(this.now());
    this.slots.hold(entry.job);
    entry.holdsSlot = true;
  }

  /** Whether this manager owns the job's sandbox (or its sleep), i.e. stop() goes through end(). */
  holds(jobId: string): boolean {
    const e = this.entries.get(jobId);
    return e !== undefined && !e.scriptRunning;
  }

  /**
   * Stops a persistent job whose script has ended: its sandbox is destroyed, the workspace synced,
   * the job `completed` (end_reason `cancelled`). False when this manager does not hold the job.
   */
  async end(jobId: string): Promise<boolean> {
    const entry = this.entries.get(jobId);
    if (!entry || entry.scriptRunning) return false;
    if (entry.state === 'starting' && !entry.sandbox && !entry.ready) {
      // Attach calls waiting for a pending job's first sandbox: they fail now; the scheduler ends the job.
      this.forget(entry);
      return false;
    }
    await this.serial(entry, async () => {
      if (this.entries.get(jobId) !== entry) return;
      this.forget(entry);
      await this.teardown(entry);
      const id = entry.id;
      const patch = { status: 'completed', end_reason: 'cancelled', vm_id: null, completed_at: new Date().toISOString() } as const;
      await this.o.logs.open(id);
      this.o.logs.append(id, 'system', 'job stopped by user');
      await this.o.logs.flush();
      const changed = await this.o.store.updateJob(id, patch, ['running', 'sleeping']);
      if (changed) this.o.logs.end(id, { status: 'completed', exit_code: entry.job.exit_code, end_reason: 'cancelled', error_message: null });
      this.o.log.info({ jobId: id }, 'persistent job stopped');
    });
    return true;
  }

  /**
   * Loads sleeping persistent jobs (the ones a previous process left are `sleeping` by now), wakes
   * the `no_sleep` ones and starts the idle checks.
   */
  async start(): Promise<void> {
    for (const job of await this.o.store.listJobsByStatus(['sleeping'])) {
      if (!job.persistent || this.entries.has(job.request_id)) continue;
      const entry = this.newEntry(job, 'sleeping');
      if (job.no_sleep) {
        this.o.log.info({ jobId: job.request_id }, 'bringing a no_sleep job back up');
        this.ready(entry).catch((err: unknown) => this.o.log.error({ err, jobId: job.request_id }, 'could not bring a no_sleep job back up'));
      }
    }
    const { freezeAfterMs, sleepAfterMs } = this.o.idle;
    const windows = [freezeAfterMs, sleepAfterMs].filter((ms) => ms > 0);
    const tick = this.o.tickMs ?? Math.min(1000, Math.max(20, Math.min(...windows, 4000) / 4));
    this.timer = setInterval(() => void this.tick(), tick);
    this.timer.unref();
  }

  /**
   * Puts every live sandbox to sleep (workspace synced) so the next start finds the jobs
   * `sleeping`; `no_sleep` ones are brought back up by that start.
   */
  async shutdown(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.allSettled(
      // Jobs whose script still runs are the scheduler's to stop at shutdown (they end up sleeping too).
      [...this.entries.values()].filter((e) => !e.scriptRunning).map((e) => this.serial(e, () => this.sleepNow(e, 'the server is shutting down'))),
    );
  }

  /**
   * Called by the scheduler when a queued job cannot start because the host is full: the frozen
   * sandbox idle longest (no attachment, a workspace to sync to, not `no_sleep`) goes to sleep early.
   */
  relieve(): void {
    if (this.relieving || this.closed) return;
    let best: Entry | undefined;
    for (const e of this.entries.values()) {
      if (e.state !== 'frozen' || e.idle.attachments > 0 || e.job.no_sleep || !canSleep(e.job) || e.scriptRunning) continue;
      if (!best || e.idle.lastActiveAt < best.idle.lastActiveAt) best = e;
    }
    if (!best) return;
    this.relieving = true;
    const e = best;
    this.serial(e, () => this.sleepNow(e, 'the host is full and a queued job waits'))
      .catch((err: unknown) => this.o.log.error({ err, jobId: e.id }, 'could not put a sandbox to sleep early'))
      .finally(() => (this.relieving = false));
  }

  // ---- internals ----

  private newEntry(job: Job, state: LiveState): Entry {
    const entry: Entry = {
      id: job.request_id,
      job,
      state,
      idle: new IdleClock(this.o.idle, this.now()),
      scriptRunning: false,
      holdsSlot: false,
      chain: Promise.resolve(),
      waiters: [],
    };
    this.entries.set(job.request_id, entry);
    return entry;
  }

  /** The job's entry, made from its stored row when this manager has none yet. */
  private async entryFor(job: Job): Promise<Entry> {
    const known = this.entries.get(job.request_id);
    if (known) return known;
    const fresh = await this.o.store.getJob(job.request_id);
    if (!fresh || isTerminalStatus(fresh.status)) throw ended(fresh ?? job);
    const again = this.entries.get(job.request_id);
    if (again) return again;
    if (fresh.status === 'sleeping') return this.newEntry(fresh, 'sleeping');
    // Pending (or running and just being handed over): wait for adopt().
    return this.newEntry(fresh, 'starting');
  }

  /** Runs `fn` after the job's earlier transitions. */
  private serial<T>(entry: Entry, fn: () => Promise<T>): Promise<T> {
    const p = entry.chain.then(fn, fn);
    entry.chain = p.catch(() => undefined);
    return p;
  }

  /** Makes the job's sandbox run (shared by concurrent callers): thaw, wake, or wait for the first start. */
  private ready(entry: Entry): Promise<LiveAttachment['woke']> {
    if (entry.state === 'running' && !entry.ready) return Promise.resolve('no');
    if (entry.state === 'starting' && !entry.sandbox && !entry.ready) {
      return new Promise((resolve) => entry.waiters.push(() => resolve('no')));
    }
    entry.ready ??= this.serial(entry, async (): Promise<LiveAttachment['woke']> => {
      if (this.entries.get(entry.id) !== entry) throw ended(entry.job);
      if (entry.state === 'frozen') {
        await this.thaw(entry);
        return 'thawed';
      }
      if (entry.state === 'sleeping') {
        await this.wake(entry);
        return 'started';
      }
      return 'no';
    }).finally(() => (entry.ready = undefined));
    return entry.ready;
  }

  private async thaw(entry: Entry): Promise<void> {
    const t0 = performance.now();
    await entry.sandbox!.resume?.();
    entry.idle.resetSamples();
    entry.idle.touch(this.now());
    this.setState(entry, 'running');
    this.o.log.info({ jobId: entry.id, ms: round(performance.now() - t0) }, 'thawed');
  }

  private async freeze(entry: Entry): Promise<void> {
    if (entry.state !== 'running' || entry.idle.attachments > 0 || !entry.sandbox?.pause) return;
    await entry.sandbox.pause();
    if (entry.idle.attachments > 0) {
      // Someone attached while the freezer worked (attach hands out a running sandbox at once): thaw.
      await entry.sandbox.resume?.();
      return;
    }
    this.setState(entry, 'frozen');
    this.o.log.info({ jobId: entry.id, idleMs: entry.idle.idleMs(this.now()) }, 'frozen after idle');
    this.slots.poke();
  }

  /** A new sandbox on the job's workspace, `startup_command` started in it, status `running`. */
  private async wake(entry: Entry): Promise<void> {
    const t0 = performance.now();
    const id = entry.id;
    const log = this.o.log.child({ jobId: id });
    const job = await this.o.store.getJob(id);
    if (!job || job.status !== 'sleeping') {
      if (!job || isTerminalStatus(job.status)) this.forget(entry);
      throw ended(job ?? entry.job);
    }
    entry.job = job;
    await this.roomFor(job);
    this.setState(entry, 'starting');
    let lease: WorkspaceLease | undefined;
    let sandbox: Sandbox | undefined;
    entry.holdsSlot = true;
    try {
      if ((job.workspace_id || job.base_workspace_id) && !this.o.workspaces) throw new Error('this server has no workspace support');
      lease = await this.o.workspaces?.open(job, log);
      const layers = lease ? { workspaceLayerDir: lease.workspaceLayerDir, extraLowerDirs: lease.extraLowerDirs, imageVersion: lease.imageVersion } : {};
      const limits = { vcpus: job.vcpus, memoryMb: job.memory_mb, diskGb: job.disk_gb, pids: DEFAULT_PIDS_LIMIT };
      sandbox = (await this.o.pool.acquire({ limits, network: true, labels: { job: id, user: job.user_id }, ...layers })).sandbox;
      const claimed = await this.o.store.updateJob(id, { status: 'running', vm_id: sandbox.id }, ['sleeping']);
      if (!claimed) throw ended(job);
    } catch (err) {
      if (sandbox) await this.o.pool.release(sandbox).catch((e: unknown) => log.error({ err: e }, 'could not release the sandbox of a failed wake'));
      await lease?.close();
      this.slots.free(id);
      entry.holdsSlot = false;
      if (err instanceof AppError) {
        this.forget(entry);
        throw err;
      }
      this.setState(entry, 'sleeping');
      log.error({ err }, 'could not wake the job');
      throw new AppError('SANDBOX_FAILED', `Could not wake job ${id}: ${err instanceof Error ? err.message : String(err)}`, 'Retry; the server log has the details.');
    }
    entry.sandbox = sandbox;
    entry.lease = lease;
    entry.job = { ...job, status: 'running', vm_id: sandbox.id };
    this.startMetering(entry, sandbox);
    entry.idle.resetSamples();
    entry.idle.touch(this.now());
    const ms = round(performance.now() - t0);
    await this.o.logs.open(id);
    this.o.logs.append(id, 'system', `woke up in ${ms} ms (sandbox ${sandbox.id})`);
    this.runStartup(entry, sandbox, job);
    this.setState(entry, 'running');
    log.info({ ms, sandbox: sandbox.id }, 'woke');
  }

  /**
   * Holds a run slot for the job's sandbox, asking for idle sandboxes to be put to sleep while the
   * host is full; a wake goes before queued jobs (someone waits on it). Throws CAPACITY_EXHAUSTED
   * when there is still no room after the capacity wait.
   */
  private async roomFor(job: Job): Promise<void> {
    const waitMs = Math.min(this.o.capacityWaitMs ?? DEFAULT_CAPACITY_WAIT_MS, (this.o.wakeTimeoutMs ?? DEFAULT_WAKE_TIMEOUT_MS) / 2);
    const deadline = performance.now() + waitMs;
    for (;;) {
      const missing = this.slots.tryHold(job);
      if (missing === null) return;
      if (this.closed || performance.now() >= deadline) {
        this.o.log.warn({ jobId: job.request_id, missing }, 'no room to wake the job');
        throw new AppError('CAPACITY_EXHAUSTED', `No room on this host to wake job ${job.request_id}: ${missing}`, 'Retry in a moment (idle sandboxes are put to sleep to make room), or stop a running job.');
      }
      this.relieve();
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Starts `startup_command` in the background; its output goes to the job's log. */
  private runStartup(entry: Entry, sandbox: Sandbox, job: Job): void {
    // A script that never finished (a server started as the script) is the job's app: run it again.
    const cmd = job.startup_command ?? (job.exit_code === null ? job.script : null);
    if (!cmd) return;
    const what = job.startup_command ? 'startup_command' : 'script (no startup_command; it had not finished)';
    const id = entry.id;
    if (!sandbox.spawn) {
      this.o.logs.append(id, 'system', `${what} not run: this runtime cannot start background processes`);
      return;
    }
    const cap = this.o.maxOutputBytes ?? 10 * 1024 * 1024;
    let bytes = 0;
    let truncated = false;
    const split = (stream: OutputStream) =>
      new LineSplitter((text) => {
        if (truncated) return;
        bytes += Buffer.byteLength(text, 'utf8') + LINE_OVERHEAD_BYTES;
        if (bytes > cap) {
          truncated = true;
          this.o.logs.append(id, 'system', `[output truncated: the ${what} wrote more than ${cap} bytes since the wake; the rest is discarded]`);
          return;
        }
        this.o.logs.append(id, stream, text);
      });
    const out = { stdout: split('stdout'), stderr: split('stderr') };
    let proc: SandboxProcess;
    try {
      proc = sandbox.spawn({ argv: ['/bin/bash', '-c', cmd], env: job.environment, cwd: '/root' }, (stream, data) => out[stream].push(data));
    } catch (err) {
      this.o.logs.append(id, 'system', `${what} could not start: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    entry.startup = proc;
    this.o.logs.append(id, 'system', `${what} started: ${cmd.length > 200 ? cmd.slice(0, 200) + '...' : cmd}`);
    void proc.exited.then(
      (exit) => {
        out.stdout.end();
        out.stderr.end();
        if (entry.startup === proc) entry.startup = undefined;
        // A sandbox torn down under it ends it with neither code nor signal: nothing to report.
        if (exit.code === null && exit.signal === null) return;
        const name = job.startup_command ? 'startup_command' : 'script';
        this.o.logs.append(id, 'system', exit.code !== null ? `${name} exited with code ${exit.code}` : `${name} killed by signal ${exit.signal}`);
      },
      (err: unknown) => this.o.log.warn({ err, jobId: id }, 'startup_command ended with an error'),
    );
  }

  /** Destroys the sandbox and syncs the workspace; status `sleeping`. */
  private async sleepNow(entry: Entry, why: string): Promise<void> {
    if (this.entries.get(entry.id) !== entry) return;
    if (entry.state !== 'running' && entry.state !== 'frozen') return;
    if (entry.idle.attachments > 0 && !this.closed) return;
    const id = entry.id;
    const idleMs = entry.idle.idleMs(this.now());
    const wasFrozen = entry.state === 'frozen';
    this.setState(entry, 'sleeping');
    if (entry.scriptRunning) {
      // The script is stopped through the guest agent, which must run to do it.
      if (wasFrozen) await entry.sandbox?.resume?.();
      await this.slots.sleepScript(id);
      this.o.log.info({ jobId: id, idleMs, why }, 'put to sleep while its script ran');
      return;
    }
    await this.teardown(entry);
    await this.o.store.updateJob(id, { status: 'sleeping', vm_id: null }, ['running']);
    entry.job = { ...entry.job, status: 'sleeping', vm_id: null };
    await this.o.logs.open(id);
    this.o.logs.append(id, 'system', `sleeping: ${why} (idle ${Math.round(idleMs / 100) / 10} s)${entry.job.workspace_id ? `; workspace ${entry.job.workspace_id} synced` : ''}`);
    await this.o.logs.flush();
    this.o.logs.end(id, { status: 'sleeping', exit_code: entry.job.exit_code, end_reason: entry.job.end_reason, error_message: null });
    this.o.log.info({ jobId: id, idleMs, why }, 'put to sleep');
    await this.o.events?.jobEnded(entry.job, 'sleeping').catch((err: unknown) => this.o.log.warn({ err, jobId: id }, 'could not announce the sleep'));
  }

  private startMetering(entry: Entry, sandbox: Sandbox): void {
    if (!this.o.usage) return;
    entry.meter = this.o.usage.track(entry.job, sandbox).catch((err: unknown) => {
      this.o.log.warn({ err, jobId: entry.id }, 'usage metering could not start; this sandbox is not metered');
      return undefined;
    });
  }

  /** Records the use of the job's current sandbox; call before the sandbox is released. */
  async stopMetering(jobId: string): Promise<void> {
    const entry = this.entries.get(jobId);
    const meter = entry?.meter;
    if (!entry || !meter) return;
    entry.meter = undefined;
    await (await meter)?.end().catch((err: unknown) => this.o.log.warn({ err, jobId }, 'could not record the usage of a sandbox'));
  }

  /** Frees the sandbox, closes the lease (final sync) and gives the slot back. */
  private async teardown(entry: Entry): Promise<void> {
    const { sandbox, lease } = entry;
    entry.sandbox = undefined;
    entry.lease = undefined;
    entry.startup = undefined;
    await this.stopMetering(entry.id);
    if (sandbox) await this.o.pool.release(sandbox).catch((err: unknown) => this.o.log.error({ err, jobId: entry.id, sandbox: sandbox.id }, 'could not release a sandbox'));
    await lease?.close();
    if (entry.holdsSlot) {
      entry.holdsSlot = false;
      this.slots.free(entry.id);
    }
  }

  private forget(entry: Entry): void {
    if (this.entries.get(entry.id) === entry) this.entries.delete(entry.id);
    this.setState(entry, 'ended');
    for (const w of entry.waiters.splice(0)) w();
  }

  private setState(entry: Entry, state: LiveState): void {
    if (entry.state === state) return;
    entry.state = state;
    for (const l of this.listeners) {
      try {
        l(entry.id, state);
      } catch (err) {
        this.o.log.error({ err, jobId: entry.id }, 'a live-state listener failed');
      }
    }
  }

  /** One round of idle checks: CPU and network samples, then freeze or sleep where the rule says so. */
  private async tick(): Promise<void> {
    if (this.ticking || this.closed) return;
    this.ticking = true;
    try {
      for (const e of this.entries.values()) {
        if (e.ready || e.queued || (e.state !== 'running' && e.state !== 'frozen')) continue;
        if (e.state === 'running' && e.sandbox?.stats) {
          try {
            const stats = await e.sandbox.stats();
            const now = this.now();
            e.idle.sampleCpu(stats.cpuUsageUs, now);
            e.idle.sampleNet(stats.egressBytes + stats.ingressBytes, now);
          } catch (err) {
            // A sandbox being torn down has no cgroup any more; the next transition settles it.
            this.o.log.debug({ err, jobId: e.id }, 'could not read the CPU and network use of a sandbox');
          }
        }
        const action = e.idle.decide({ frozen: e.state === 'frozen', noSleep: e.job.no_sleep, canSleep: canSleep(e.job) }, this.now());
        if (!action) continue;
        // Queued on the job's chain without waiting: a slow sync of one job never holds up the others.
        e.queued = true;
        const step = action === 'freeze' ? () => this.freeze(e) : () => this.sleepNow(e, 'idle');
        this.serial(e, step)
          .catch((err: unknown) => {
            // Retried after another idle window, not at every check.
            e.idle.touch(this.now());
            this.o.log.error({ err, jobId: e.id }, action === 'freeze' ? 'could not freeze an idle sandbox' : 'could not put an idle sandbox to sleep');
          })
          .finally(() => (e.queued = false));
      }
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Takes the latest `no_sleep` / `startup_command` after a PATCH; setting `no_sleep` on a frozen or
   * sleeping job brings it up (in the background).
   */
  updated(job: Job): void {
    if (!job.persistent || isTerminalStatus(job.status)) return;
    let e = this.entries.get(job.request_id);
    if (!e && job.status === 'sleeping') e = this.newEntry(job, 'sleeping');
    if (!e) return;
    e.job = { ...e.job, no_sleep: job.no_sleep, startup_command: job.startup_command };
    if (job.no_sleep && (e.state === 'sleeping' || e.state === 'frozen') && !this.closed) {
      const entry = e;
      this.ready(entry).catch((err: unknown) => this.o.log.error({ err, jobId: entry.id }, 'could not bring a no_sleep job up'));
    }
  }
}

/** Sleeping loses nothing only when the job has a workspace to sync to. */
function canSleep(job: Job): boolean {
  return job.workspace_id !== null;
}

function ended(job: Job): AppError {
  return new AppError('JOB_NOT_RUNNING', `Job ${job.request_id} has ended (${job.status}); there is no sandbox to attach to`, 'Start a new job: mags run -p ...');
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** Waits for `p` at most `ms`, or until `signal` aborts. */
async function bounded<T>(p: Promise<T>, ms: number, signal: AbortSignal | undefined, jobId: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AppError('SANDBOX_START_TIMEOUT', `Job ${jobId} did not wake within ${ms / 1000} s`, 'Retry in a moment; the wake goes on in the background.')), ms);
        if (signal) {
          onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('attach aborted'));
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        }
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
