/** Failed sign-ins allowed per key within the window before the key is refused. */
export interface LoginLimits {
  perAccount: number;
  perAddress: number;
  windowMs: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = { perAccount: 5, perAddress: 20, windowMs: 15 * 60_000 };

/** Most keys remembered; the oldest are dropped first so a flood of names cannot exhaust memory. */
const MAX_KEYS = 100_000;

/**
 * Counts failed sign-ins per account and per client address in a fixed window (in memory, per
 * server process). A key over its limit is refused until its window ends; a success clears the
 * account's count.
 */
export class LoginLimiter {
  private readonly failures = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly limits: LoginLimits = DEFAULT_LOGIN_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until `account` / `address` may try again, or 0 when they may now. */
  retryAfterSeconds(account: string, address: string): number {
    const t = this.now();
    const wait = (key: string, limit: number) => {
      const f = this.failures.get(key);
      if (!f || f.resetAt <= t || f.count < limit) return 0;
      return Math.ceil((f.resetAt - t) / 1000);
    };
    return Math.max(wait(`acct:${account.toLowerCase()}`, this.limits.perAccount), wait(`addr:${address}`, this.limits.perAddress));
  }

  recordFailure(account: string, address: string): void {
    this.bump(`acct:${account.toLowerCase()}`);
    this.bump(`addr:${address}`);
  }

  recordSuccess(account: string): void {
    this.failures.delete(`acct:${account.toLowerCase()}`);
  }

  private bump(key: string): void {
    const t = this.now();
    const f = this.failures.get(key);
    if (f && f.resetAt > t) {
      f.count++;
      return;
    }
    this.failures.delete(key);
    if (this.failures.size >= MAX_KEYS) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(key, { count: 1, resetAt: t + this.limits.windowMs });
  }
}
