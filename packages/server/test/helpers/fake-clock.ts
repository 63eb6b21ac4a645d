import type { Clock } from '../../src/clock.js';

/** A clock that moves only when the test says so; timers fire in `advance`. */
export class FakeClock implements Clock {
  private seq = 0;
  readonly timers = new Map<number, { at: number; fn: () => void }>();

  constructor(public ms: number) {}

  now(): number {
    return this.ms;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.ms + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** When the earliest pending timer fires (Infinity when none). */
  nextTimerAt(): number {
    return Math.min(...[...this.timers.values()].map((t) => t.at));
  }

  /** Moves to `to` (ms) and runs the timers due by then. */
  set(to: number): void {
    this.ms = to;
    for (const [id, t] of [...this.timers].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at <= this.ms) {
        this.timers.delete(id);
        t.fn();
      }
    }
  }
}
