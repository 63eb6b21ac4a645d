/**
 * The warm pool: sandboxes created ahead of time with the default limits, agent up and waiting, so
 * a job without a workspace starts with one exec round trip. acquire() never waits for a refill:
 * it takes an idle sandbox (and applies the job's CPU, memory and pids limits) or creates one cold.
 * Refills run in the background, up to `refillConcurrency` creations at once (default: one fewer
 * than the cores, at least one: refills then never take every core from the jobs running; with two
 * at once on a 2-core host warm jobs took 12.5 ms instead of 9-11 ms, for no throughput gain).
 * Sandboxes are never reused: release() destroys them and the pool creates fresh ones.
 */
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { PoolStatus, RuntimeDriver, Sandbox, SandboxLimits, SandboxPool, SandboxSpec } from '../runtime/driver.js';
import { inBackground } from '../runtime/priority.js';

/** Options of the warm pool. */
export interface PoolOptions {
  /** Idle sandboxes kept ready. */
  minSize: number;
  /** The pool stops refilling while idle + busy sandboxes reach this many. */
  maxSize: number;
  /** Limits pooled sandboxes are created with. */
  defaultLimits: SandboxLimits;
  log: Logger;
  /** Pooled sandboxes created at once while refilling (default: cores - 1, at least 1). */
  refillConcurrency?: number;
}

const MAX_BACKOFF_MS = 30_000;

/** Creates the warm pool of pre-started sandboxes on top of a runtime driver. */
export function createPool(driver: RuntimeDriver, opts: PoolOptions): SandboxPool {
  return new WarmPool(driver, opts);
}

class WarmPool implements SandboxPool {
  private idle: Sandbox[] = [];
  private busy = new Set<Sandbox>();
  /** Running refill loops. */
  private readonly fillers = new Set<Promise<void>>();
  /** Pooled creations in flight (they count towards idle and the maximum). */
  private creating = 0;
  private readonly refillConcurrency: number;
  private started = false;
  private stopped = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly driver: RuntimeDriver,
    private readonly opts: PoolOptions,
  ) {
    this.refillConcurrency = Math.max(1, Math.floor(opts.refillConcurrency ?? availableParallelism() - 1));
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.fill();
  }

  /** Whether a pooled sandbox can serve this spec (same disk size and network, no layers). */
  private fits(spec: SandboxSpec): boolean {
    return (
      !spec.workspaceLayerDir &&
      !(spec.extraLowerDirs && spec.extraLowerDirs.length > 0) &&
      spec.network !== false &&
      spec.limits.diskGb === this.opts.defaultLimits.diskGb
    );
  }

  async acquire(spec: SandboxSpec): Promise<{ sandbox: Sandbox; warm: boolean }> {
    if (this.stopped) throw new Error('the sandbox pool is stopped');
    if (this.fits(spec)) {
      while (this.idle.length > 0) {
        const sandbox = this.idle.shift()!;
        if ((sandbox as { alive?: boolean }).alive === false) {
          sandbox.destroy().catch((err: unknown) => this.opts.log.warn({ err, sandbox: sandbox.id }, 'could not destroy a dead pooled sandbox'));
          continue;
        }
        this.busy.add(sandbox);
        this.fill();
        try {
          const { vcpus, memoryMb, pids } = spec.limits;
          await sandbox.updateLimits({ vcpus, memoryMb, pids });
          return { sandbox, warm: true };
        } catch (err) {
          this.opts.log.warn({ err, sandbox: sandbox.id }, 'could not apply the job limits to a pooled sandbox; creating one cold');
          this.busy.delete(sandbox);
          sandbox.destroy().catch(() => {});
          break;
        }
      }
    }
    const sandbox = await this.driver.create(spec);
    if (this.stopped) {
      await sandbox.destroy();
      throw new Error('the sandbox pool is stopped');
    }
    this.busy.add(sandbox);
    return { sandbox, warm: false };
  }

  async release(sandbox: Sandbox): Promise<void> {
    this.busy.delete(sandbox);
    try {
      // The job has ended and was announced: its teardown yields the CPU to jobs starting meanwhile.
      await inBackground(() => sandbox.destroy());
    } finally {
      this.fill();
    }
  }

  status(): PoolStatus {
    return {
      idle_vms: this.idle.length,
      busy_vms: this.busy.size,
      total_vms: this.idle.length + this.busy.size,
      min_pool_size: this.opts.minSize,
      max_pool_size: this.opts.maxSize,
    };
  }

  private wanted(): boolean {
    const idle = this.idle.length + this.creating;
    return (
      this.started &&
      !this.stopped &&
      idle < this.opts.minSize &&
      idle + this.busy.size < Math.max(this.opts.maxSize, this.opts.minSize)
    );
  }

  /** Starts background refill loops (up to refillConcurrency) while sandboxes are wanted. */
  private fill(): void {
    while (!this.retryTimer && this.fillers.size < this.refillConcurrency && this.wanted()) {
      const p: Promise<void> = this.fillLoop().finally(() => this.fillers.delete(p));
      this.fillers.add(p);
    }
  }

  private async fillLoop(): Promise<void> {
    while (!this.retryTimer && this.wanted()) {
      this.creating++;
      let sandbox: Sandbox;
      try {
        // At a low CPU weight: a job starting meanwhile runs first.
        sandbox = await inBackground(() => this.driver.create({ limits: { ...this.opts.defaultLimits }, network: true, labels: { pool: 'warm' } }));
        await this.firstCommand(sandbox);
      } catch (err) {
        this.creating--;
        this.failures++;
        if (this.retryTimer) return;
        const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (this.failures - 1));
        this.opts.log.error({ err, retryInMs: delay }, 'could not create a pooled sandbox');
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.fill();
        }, delay);
        this.retryTimer.unref();
        return;
      }
      this.creating--;
      if (this.stopped) {
        await sandbox.destroy();
        return;
      }
      this.idle.push(sandbox);
      this.failures = 0;
    }
  }

  /**
   * Runs `true` once in a new pooled sandbox: bash, libc and the loader are then looked up and
   * mapped through its overlay before a job's script needs them (the first command in a sandbox
   * took ~0.7 ms longer than later ones). A sandbox that cannot run it is destroyed, never pooled.
   */
  private async firstCommand(sandbox: Sandbox): Promise<void> {
    const r = await sandbox.exec({ script: 'true', cwd: '/root', timeoutMs: 10_000 }, () => {}).catch((err: unknown) => ({ reason: 'sandbox_failed' as const, exitCode: null, message: String(err) }));
    if (r.reason === 'exited' && r.exitCode === 0) return;
    await inBackground(() => sandbox.destroy()).catch(() => {});
    throw new Error(`a new pooled sandbox could not run its first command (${r.reason}${r.message ? `: ${r.message}` : ''})`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await Promise.allSettled([...this.fillers]);
    const idle = this.idle.splice(0);
    await Promise.allSettled(idle.map((s) => s.destroy()));
  }
}
