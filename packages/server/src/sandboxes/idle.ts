/**
 * The idle rule of one persistent sandbox, on a clock the caller passes in (milliseconds), so it is
 * tested without timers. Activity is: an open attachment (attach..release), a touch() (e.g. a
 * proxied request that just ended), the script of the job still running, the sandbox's processes
 * using more CPU than `cpuBusyFraction` of one core between two samples, or its network interface
 * moving more than `netBusyBytesPerSecond` (sent plus received) between two samples. Idle time counts
 * from the last activity; after `freezeAfterMs` the sandbox is frozen, after `sleepAfterMs` it is
 * put to sleep (the sleep window counts from the same last activity, not from the freeze).
 */

/** The windows and the CPU threshold (docs/sandboxes.md, "Persistent sandboxes"). */
export interface IdleSettings {
  /** Idle time before the sandbox is frozen; 0 = never frozen. */
  freezeAfterMs: number;
  /** Idle time before the sandbox is synced and stopped (`sleeping`); 0 = never put to sleep. */
  sleepAfterMs: number;
  /** CPU use, as a fraction of one core averaged between two samples, that counts as activity. */
  cpuBusyFraction: number;
  /**
   * Bytes per second through the sandbox's network interface (sent plus received, averaged between
   * two samples) that count as activity; 0 = traffic never counts.
   */
  netBusyBytesPerSecond: number;
}

/** What the sandbox should do now. */
export type IdleAction = 'freeze' | 'sleep' | null;

/** What the decision depends on besides the clock. */
export interface IdleFacts {
  /** Whether the sandbox is frozen now. */
  frozen: boolean;
  /** `no_sleep`: neither frozen nor put to sleep. */
  noSleep: boolean;
  /** Whether sleeping loses nothing (the job has a workspace that is synced on sleep). */
  canSleep: boolean;
}

export class IdleClock {
  private open = 0;
  private last: number;
  private cpu: { at: number; usageMicros: number } | undefined;
  private net: { at: number; bytes: number } | undefined;

  constructor(
    private readonly settings: IdleSettings,
    now: number,
  ) {
    this.last = now;
  }

  /** Attachments open now. */
  get attachments(): number {
    return this.open;
  }

  /** When the last activity was seen. */
  get lastActiveAt(): number {
    return this.last;
  }

  attach(now: number): void {
    this.open++;
    this.touch(now);
  }

  release(now: number): void {
    if (this.open > 0) this.open--;
    this.touch(now);
  }

  touch(now: number): void {
    if (now > this.last) this.last = now;
  }

  /**
   * Records the sandbox's total CPU time (microseconds since it started); counts as activity when
   * the use since the previous sample is above the threshold. Returns whether it did.
   */
  sampleCpu(usageMicros: number, now: number): boolean {
    const prev = this.cpu;
    this.cpu = { at: now, usageMicros };
    if (!prev || now <= prev.at) return false;
    const fraction = (usageMicros - prev.usageMicros) / ((now - prev.at) * 1000);
    if (fraction > this.settings.cpuBusyFraction) {
      this.touch(now);
      return true;
    }
    return false;
  }

  /**
   * Records the bytes the sandbox's interface moved so far (sent plus received); counts as activity
   * when the rate since the previous sample is above the threshold. Returns whether it did.
   */
  sampleNet(bytes: number, now: number): boolean {
    const prev = this.net;
    this.net = { at: now, bytes };
    const threshold = this.settings.netBusyBytesPerSecond;
    if (!prev || now <= prev.at || threshold <= 0) return false;
    if (((bytes - prev.bytes) * 1000) / (now - prev.at) > threshold) {
      this.touch(now);
      return true;
    }
    return false;
  }

  /** Forgets the last CPU and network samples (after a thaw or a new sandbox: the next sample starts afresh). */
  resetSamples(): void {
    this.cpu = undefined;
    this.net = undefined;
  }

  /** Milliseconds since the last activity. */
  idleMs(now: number): number {
    return Math.max(0, now - this.last);
  }

  /** Freeze, sleep or nothing, given the facts and the time now. */
  decide(facts: IdleFacts, now: number): IdleAction {
    if (this.open > 0 || facts.noSleep) return null;
    const idle = this.idleMs(now);
    const { freezeAfterMs, sleepAfterMs } = this.settings;
    if (facts.canSleep && sleepAfterMs > 0 && idle >= sleepAfterMs) return 'sleep';
    if (!facts.frozen && freezeAfterMs > 0 && idle >= freezeAfterMs) return 'freeze';
    return null;
  }
}
