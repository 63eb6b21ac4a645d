import type { Logger } from 'pino';
import type { LogStore } from '../storage/logs/store.js';
import type { CronStore } from '../storage/metadata/cron.js';
import type { WebhookStore } from '../storage/metadata/webhooks.js';

const DAY_MS = 86_400_000;

/** One kind of record the retention loop prunes. */
export interface RetentionSweep {
  /** What it deletes, for the log (`job output lines`). */
  what: string;
  /** Records older than this many days go; 0 keeps them forever (the sweep is skipped). */
  days: number;
  /** Deletes what it keeps no longer that is older than `cutoff` (ISO time); answers how many records went. */
  sweep(cutoff: string): Promise<number>;
}

export interface RetentionOptions {
  /** Time between sweeps (default one hour). */
  intervalMs?: number;
  /** The clock (tests pass a fake one). */
  now?: () => number;
}

/**
 * The periodic maintenance loop: runs each sweep with its own cutoff (now − its days) once at
 * `start()`, then every `intervalMs`. A failing sweep is logged and the others still run; the
 * next round retries it.
 */
export class Retention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly log: Logger,
    private readonly sweeps: readonly RetentionSweep[],
    o: RetentionOptions = {},
  ) {
    this.intervalMs = o.intervalMs ?? 3_600_000;
    this.now = o.now ?? Date.now;
  }

  /** Runs every sweep that has a retention once; answers how many records went in all. */
  async sweep(): Promise<number> {
    let deleted = 0;
    for (const s of this.sweeps) {
      if (s.days <= 0) continue;
      const cutoff = new Date(this.now() - s.days * DAY_MS).toISOString();
      try {
        const n = await s.sweep(cutoff);
        if (n > 0) this.log.info({ deleted: n, cutoff }, `deleted ${s.what} past their retention`);
        deleted += n;
      } catch (err) {
        this.log.error({ err }, `the retention sweep of ${s.what} failed; the next one retries`);
      }
    }
    return deleted;
  }

  /** Sweeps once now and then every interval (nothing when no sweep has a retention). */
  start(): void {
    if (this.timer || !this.sweeps.some((s) => s.days > 0)) return;
    const tick = () => {
      this.running = this.sweep();
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

/**
 * Records of each schedule and each webhook endpoint kept whatever their age: the default page of
 * `GET .../runs` and `GET .../deliveries`, so a rarely firing schedule still shows its history.
 */
export const KEEP_NEWEST = 50;

/** The output of jobs that ended (`completed`, `error`) before the cutoff; the job rows stay and their logs answer an empty list. */
export function logSweep(store: LogStore, days: number): RetentionSweep {
  return { what: 'the output of jobs', days, sweep: (cutoff) => store.deleteEndedBefore(cutoff) };
}

/**
 * Firings of schedules recorded before the cutoff, except each schedule's newest `KEEP_NEWEST`,
 * its newest firing that submitted a job (the overlap policy looks at that job) and firings that
 * wait for the previous job (`queued`).
 */
export function cronRunsSweep(store: CronStore, days: number): RetentionSweep {
  return { what: 'schedule firings', days, sweep: (cutoff) => store.pruneRuns(cutoff, KEEP_NEWEST) };
}

/** Delivered and failed webhook deliveries created before the cutoff, except each endpoint's newest `KEEP_NEWEST`; pending ones (waiting or being sent) stay. */
export function deliveriesSweep(store: WebhookStore, days: number): RetentionSweep {
  return { what: 'webhook deliveries', days, sweep: (cutoff) => store.pruneDeliveries(cutoff, KEEP_NEWEST) };
}
