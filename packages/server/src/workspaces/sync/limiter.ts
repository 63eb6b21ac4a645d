/**
 * Runs at most `max` tasks at once; `run` waits for a free slot, `drain` for all tasks. The first
 * failure is kept and thrown by the next `run` or by `drain`, so a caller stops early.
 */
export class Limiter {
  private pending = new Set<Promise<void>>();
  private failure: { err: unknown } | undefined;

  constructor(private readonly max: number) {}

  async run(task: () => Promise<void>): Promise<void> {
    this.check();
    while (this.pending.size >= this.max) {
      await Promise.race(this.pending);
      this.check();
    }
    const p: Promise<void> = task().then(
      () => {
        this.pending.delete(p);
      },
      (err: unknown) => {
        this.pending.delete(p);
        this.failure ??= { err };
      },
    );
    this.pending.add(p);
  }

  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.race(this.pending);
    this.check();
  }

  private check(): void {
    if (this.failure) throw this.failure.err;
  }
}

/** A counting semaphore: `use` runs `fn` once fewer than `max` calls are running. */
export class Semaphore {
  private running = 0;
  private queue: (() => void)[] = [];

  constructor(private readonly max: number) {}

  async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((wake) => this.queue.push(wake));
    else this.running++;
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.running--;
    }
  }
}
