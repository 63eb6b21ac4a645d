import { EarliestTimer, type Clock } from './clock.js';

export interface PassLoopOptions {
  clock: Clock;
  /** One round of work; answers true when there is more to do at once (it handled a full batch). */
  round(): Promise<boolean>;
  /** Runs after the last round of a pass; answers when the next pass is due (ISO time), undefined when nothing is known to be due. */
  settle(): Promise<string | undefined>;
  /** The longest the loop sleeps between passes (work another daemon stored), and the wait after a failed pass. */
  maxSleepMs: number;
  /** A round or `settle` threw: the loop tries again after `maxSleepMs`. */
  failed(err: unknown): void;
}

/**
 * The timer-driven pass loop of the cron engine and the webhook dispatcher: one pass at a time;
 * a pass asked for while one runs makes the running one go round once more when it is done
 * (however many asked), and shares its promise. After its rounds a pass sleeps until the next due
 * time `settle` names, at most `maxSleepMs`. Nothing runs between `stop()` and the next `start()`.
 */
export class PassLoop {
  private readonly timer: EarliestTimer;
  private running = false;
  private current: Promise<void> = Promise.resolve();
  private again = false;
  private stopped = true;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly o: PassLoopOptions) {
    this.timer = new EarliestTimer(o.clock, () => {
      const p = this.pass();
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
    });
  }

  start(): void {
    this.stopped = false;
    this.kick();
  }

  /** Stops the timer and waits for the passes it started. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Resolves when the passes started by the timer so far have finished. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** A pass now (new work was stored). */
  kick(): void {
    this.wakeIn(0);
  }

  /** A pass in `ms` at the latest (a retry falls due then); an earlier one stays. */
  wakeIn(ms: number): void {
    if (!this.stopped) this.timer.arm(ms);
  }

  /** Runs a pass, or asks the running one for one more round and answers its promise. */
  pass(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.current;
    }
    this.running = true;
    this.current = this.run();
    return this.current;
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        do {
          this.again = false;
          if (await this.o.round()) this.again = true;
        } while (this.again && !this.stopped);
        if (this.stopped) return;
        const next = await this.o.settle();
        // Asked for while settling: the rounds may have missed that work.
        if (this.again && !this.stopped) continue;
        const ms = next === undefined ? NaN : Date.parse(next) - this.o.clock.now();
        this.wakeIn(Number.isNaN(ms) ? this.o.maxSleepMs : Math.min(this.o.maxSleepMs, Math.max(0, ms)));
        return;
      }
    } catch (err) {
      this.o.failed(err);
      this.wakeIn(this.o.maxSleepMs);
    } finally {
      this.running = false;
    }
  }
}
