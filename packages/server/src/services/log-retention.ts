import type { Logger } from 'pino';
import type { LogStore } from '../storage/logs/store.js';

const DAY_MS = 86_400_000;

export interface LogRetentionOptions {
  /** Days a finished job's lines are kept; 0 keeps them forever (the service does nothing). */
  days: number;
  /** Time between sweeps (default one hour). */
  intervalMs?: number;
  /** The clock (tests pass a fake one). */
  now?: () => number;
}

/**
 * Deletes the stored output of jobs that ended (`completed` or `error`) more than `days` ago: once at
 * `start()`, then every `intervalMs`. The job rows stay; their logs answer an empty list.
 */
export class LogRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly store: LogStore,
    private readonly log: Logger,
    private readonly o: LogRetentionOptions,
  ) {
    this.intervalMs = o.intervalMs ?? 3_600_000;
    this.now = o.now ?? Date.now;
  }

  /** Deletes the lines of jobs that ended before now − days; returns how many lines went. */
  async sweep(): Promise<number> {
    const cutoff = new Date(this.now() - this.o.days * DAY_MS).toISOString();
    const deleted = await this.store.deleteEndedBefore(cutoff);
    if (deleted > 0) this.log.info({ deleted, cutoff }, 'deleted the output of jobs past the log retention');
    return deleted;
  }

  /** Sweeps once now and then every interval (nothing when `days` is 0). */
  start(): void {
    if (this.o.days <= 0 || this.timer) return;
    const tick = () => {
      this.running = this.sweep().then(
        () => undefined,
        (err: unknown) => this.log.error({ err }, 'log retention sweep failed; the next one retries'),
      );
    };
    tick();
    this.timer = setInterval(tick, this.intervalMs);
    this.timer.unref();
  }

  /** Stops the sweeps and waits for one in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
