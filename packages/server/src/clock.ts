/** Time and timers of the cron engine and the webhook dispatcher (tests pass a controllable one). */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock; its timers do not keep the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.min(ms, 2 ** 31 - 1));
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * One timer for the earliest of the times asked for (the cron engine's and the webhook
 * dispatcher's next due pass): `arm(ms)` moves it earlier, never later; it fires once.
 */
export class EarliestTimer {
  private handle: unknown;
  private at = Infinity;

  constructor(
    private readonly clock: Clock,
    private readonly fire: () => void,
  ) {}

  arm(ms: number): void {
    const at = this.clock.now() + ms;
    if (this.handle !== undefined && this.at <= at) return;
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
    this.at = at;
    this.handle = this.clock.setTimeout(() => {
      this.handle = undefined;
      this.at = Infinity;
      this.fire();
    }, ms);
  }

  clear(): void {
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
    this.handle = undefined;
    this.at = Infinity;
  }
}
