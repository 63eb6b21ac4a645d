import type { Logger } from 'pino';
import type { Sandbox, SandboxStats } from '../runtime/driver.js';
import type { Job, JobStore, User, UserStore } from '../storage/metadata/store.js';
import type { QuotaRecord, UsageGroup, UsageStore, UsageSums } from '../storage/metadata/usage.js';
import { AppError } from './errors.js';
import { newId } from './tokens.js';

/** Usage of one group in an answer of `GET /api/v1/usage`. */
export interface UsageRow {
  key: string;
  jobs: number;
  wall_seconds: number;
  vcpu_seconds: number;
  /** Granted memory times wall time. */
  memory_mb_seconds: number;
  peak_memory_mb: number;
  egress_bytes: number;
  ingress_bytes: number;
  /** Stored workspace bytes now: per user (group_by=user) and in the totals; null per day or job. */
  storage_bytes: number | null;
}

export interface UsageAnswer {
  from: string;
  to: string;
  group_by: UsageGroup;
  rows: UsageRow[];
  /** Over the whole range; storage_bytes of the users in it (or of the caller). */
  totals: Omit<UsageRow, 'key'>;
}

/** What the meter needs to know about stored workspace bytes. */
export interface StorageSizes {
  /** Bytes of every workspace of the user. */
  userBytes(userId: string): Promise<number>;
}

/** A sandbox lifetime being metered: `end()` writes what it used since the last mark. */
export interface MeterHandle {
  /** Writes the use since the last mark and moves the mark (long-running sandboxes). */
  checkpoint(): Promise<void>;
  /** Writes the rest and stops metering; idempotent. Call before the sandbox is destroyed. */
  end(): Promise<void>;
}

interface Mark {
  at: number;
  stats: SandboxStats;
}

/** How long a user's quota row is believed without reading it again (a quota set through another control plane applies after this). */
export const DEFAULT_QUOTA_CACHE_MS = 5000;
/** Cached quota rows; past this the cache starts over. */
const QUOTA_CACHE_ENTRIES = 10_000;

const ZERO: SandboxStats = { cpuUsageUs: 0, memoryBytes: 0, memoryPeakBytes: 0, egressBytes: 0, ingressBytes: 0 };
const MIB = 1024 * 1024;

/**
 * Usage metering: per sandbox lifetime of a job it records wall time, CPU time and peak memory
 * (from the cgroup), network bytes (from the host end of the veth) and the limits granted; sums
 * them per day, job or user; and checks the per-user quotas an admin set. A sandbox held for a
 * long time (a persistent job) is checkpointed every `checkpointMs` so its use shows while it runs.
 * Submissions check quotas against rows cached for `quotaCacheMs`: `setQuota` here replaces the
 * cached row at once, one set through another control plane applies when the row expires.
 */
export class UsageMeter {
  private readonly open = new Set<MeterHandle>();
  private timer: NodeJS.Timeout | undefined;
  /** Quota rows by user (undefined: the user has none) and when they were read. */
  private readonly quotas = new Map<string, { row: QuotaRecord | undefined; at: number }>();

  constructor(
    private readonly o: {
      store: UsageStore;
      jobs: JobStore;
      users: UserStore;
      log: Logger;
      storage?: StorageSizes;
      /** How often open sandboxes are checkpointed (default 5 min). */
      checkpointMs?: number;
      /** How long a quota row read for a submission is reused (default 5 s; 0 reads it every time). */
      quotaCacheMs?: number;
      now?: () => number;
    },
  ) {}

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  /** Starts metering a sandbox that now runs `job`. */
  async track(job: Job, sandbox: Sandbox): Promise<MeterHandle> {
    let mark: Mark = { at: this.now(), stats: await readStats(sandbox) };
    let ended = false;
    const write = async (): Promise<void> => {
      const next: Mark = { at: this.now(), stats: await readStats(sandbox) };
      const from = mark;
      mark = next;
      await this.o.store.insertUsage({
        id: newId(),
        job_id: job.request_id,
        user_id: job.user_id,
        started_at: new Date(from.at).toISOString(),
        ended_at: new Date(next.at).toISOString(),
        wall_ms: Math.max(0, Math.round(next.at - from.at)),
        cpu_us: Math.max(0, next.stats.cpuUsageUs - from.stats.cpuUsageUs),
        memory_peak_bytes: next.stats.memoryPeakBytes,
        memory_mb: job.memory_mb,
        vcpus: job.vcpus,
        egress_bytes: Math.max(0, next.stats.egressBytes - from.stats.egressBytes),
        ingress_bytes: Math.max(0, next.stats.ingressBytes - from.stats.ingressBytes),
      });
    };
    const handle: MeterHandle = {
      checkpoint: () => (ended ? Promise.resolve() : write()),
      end: async () => {
        if (ended) return;
        ended = true;
        this.open.delete(handle);
        await write();
      },
    };
    this.open.add(handle);
    this.ensureTimer();
    return handle;
  }

  private ensureTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      for (const h of this.open) h.checkpoint().catch((err: unknown) => this.o.log.warn({ err }, 'usage checkpoint failed'));
    }, this.o.checkpointMs ?? 5 * 60_000);
    this.timer.unref();
  }

  /** Stops the checkpoint timer (open handles still end normally). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Usage in [from, to) grouped by day, job or user. A user sees their own; an admin sees every
   * user's unless `userId` narrows it.
   */
  async query(actor: User, q: { from: string; to: string; groupBy: UsageGroup; userId?: string }): Promise<UsageAnswer> {
    if (q.userId && !actor.admin && q.userId !== actor.id) {
      throw new AppError('FORBIDDEN', "Only an admin may read another user's usage");
    }
    const userId = actor.admin ? q.userId : actor.id;
    const sums = await this.o.store.sumUsage({ from: q.from, to: q.to, groupBy: q.groupBy, userId });
    const rows: UsageRow[] = [];
    for (const s of sums) rows.push({ key: s.key, ...toRow(s), storage_bytes: q.groupBy === 'user' ? await this.storageOf(s.key) : null });
    // Per-user sums add up (a job has one user); per-day ones would count a job spanning midnight twice.
    const byUser = q.groupBy === 'user' ? sums : await this.o.store.sumUsage({ from: q.from, to: q.to, groupBy: 'user', userId });
    let storage = 0;
    if (userId) storage = await this.storageOf(userId);
    else for (const s of byUser) storage += await this.storageOf(s.key);
    return { from: q.from, to: q.to, group_by: q.groupBy, rows, totals: { ...toRow(sumAll(byUser)), storage_bytes: storage } };
  }

  private storageOf(userId: string): Promise<number> {
    return this.o.storage ? this.o.storage.userBytes(userId) : Promise.resolve(0);
  }

  /** USER_NOT_FOUND unless a user has this id. */
  async requireUser(userId: string): Promise<void> {
    if (!(await this.o.users.getUser(userId))) throw new AppError('USER_NOT_FOUND', `No user has id "${userId.slice(0, 80)}"`, 'List users with GET /api/v1/users.');
  }

  /** The user's quota as stored now (nulls when the admin set none). */
  async quota(userId: string): Promise<QuotaRecord> {
    return (await this.readQuota(userId)) ?? { user_id: userId, max_concurrent_sandboxes: null, sandbox_hours_per_month: null, storage_gb: null, updated_at: new Date(0).toISOString() };
  }

  /** Reads the user's quota row and caches what it read. */
  private async readQuota(userId: string): Promise<QuotaRecord | undefined> {
    const at = this.now();
    const row = await this.o.store.getQuota(userId);
    this.cacheQuota(userId, row, at);
    return row;
  }

  private cacheQuota(userId: string, row: QuotaRecord | undefined, at: number): void {
    if (this.quotas.size >= QUOTA_CACHE_ENTRIES && !this.quotas.has(userId)) this.quotas.clear();
    this.quotas.set(userId, { row, at });
  }

  /** The user's quota row, from the cache while it is younger than `quotaCacheMs`. */
  private async cachedQuota(userId: string): Promise<QuotaRecord | undefined> {
    const hit = this.quotas.get(userId);
    if (hit && this.now() - hit.at < (this.o.quotaCacheMs ?? DEFAULT_QUOTA_CACHE_MS)) return hit.row;
    return this.readQuota(userId);
  }

  async setQuota(actor: User, userId: string, q: Pick<QuotaRecord, 'max_concurrent_sandboxes' | 'sandbox_hours_per_month' | 'storage_gb'>): Promise<QuotaRecord> {
    if (!actor.admin) throw new AppError('FORBIDDEN', 'Only an admin may set quotas', 'Use the admin token from $MAGS_DATA_DIR/admin-token.');
    const row: QuotaRecord = { user_id: userId, ...q, updated_at: new Date(this.now()).toISOString() };
    await this.o.store.setQuota(row);
    this.cacheQuota(userId, row, this.now());
    this.o.log.info({ userId, quota: q, by: actor.id }, 'quota set');
    return row;
  }

  /** What the user has used of each quota now. */
  async used(userId: string): Promise<{ concurrent_sandboxes: number; sandbox_hours_this_month: number; storage_bytes: number }> {
    const [concurrent, hours, storage] = await Promise.all([this.concurrent(userId), this.hoursThisMonth(userId), this.storageOf(userId)]);
    return { concurrent_sandboxes: concurrent, sandbox_hours_this_month: round(hours, 6), storage_bytes: storage };
  }

  /** The user's jobs that hold or wait for a sandbox. */
  private concurrent(userId: string): Promise<number> {
    return this.o.jobs.countUserJobs(userId, ['pending', 'running']);
  }

  /** Sandbox hours the user used since the start of this month (UTC). */
  private async hoursThisMonth(userId: string): Promise<number> {
    return (await this.o.store.wallMsSince(userId, startOfMonthUtc(this.now()))) / 3_600_000;
  }

  /** QUOTA_EXCEEDED naming the quota when a new job of this user would go beyond one. */
  async checkSubmit(user: User, opts: { workspace: boolean }): Promise<void> {
    const q = await this.cachedQuota(user.id);
    if (!q) return;
    if (q.max_concurrent_sandboxes !== null) {
      const n = await this.concurrent(user.id);
      if (n >= q.max_concurrent_sandboxes) {
        throw new AppError('QUOTA_EXCEEDED', `Quota exceeded: concurrent sandboxes. You have ${n} jobs running or queued; your quota is ${q.max_concurrent_sandboxes}`, 'Stop jobs you no longer need (mags stop), or ask the admin to raise the quota.');
      }
    }
    if (q.sandbox_hours_per_month !== null) {
      const hours = await this.hoursThisMonth(user.id);
      if (hours >= q.sandbox_hours_per_month) {
        throw new AppError('QUOTA_EXCEEDED', `Quota exceeded: sandbox hours per month. You used ${round(hours, 2)} h this month (UTC); your quota is ${q.sandbox_hours_per_month} h`, 'Wait for the next month or ask the admin to raise the quota.');
      }
    }
    if (opts.workspace && q.storage_gb !== null) {
      const bytes = await this.storageOf(user.id);
      if (bytes >= q.storage_gb * 1024 * MIB) {
        throw new AppError('QUOTA_EXCEEDED', `Quota exceeded: storage. Your workspaces hold ${round(bytes / (1024 * MIB), 2)} GB; your quota is ${q.storage_gb} GB`, 'Delete workspaces you no longer need (mags workspace delete), or ask the admin to raise the quota.');
      }
    }
  }
}

async function readStats(sandbox: Sandbox): Promise<SandboxStats> {
  return sandbox.stats ? sandbox.stats() : ZERO;
}

function toRow(s: Omit<UsageSums, 'key'>): Omit<UsageRow, 'key' | 'storage_bytes'> {
  return {
    jobs: s.jobs,
    wall_seconds: round(s.wall_ms / 1000, 3),
    vcpu_seconds: round(s.cpu_us / 1e6, 3),
    memory_mb_seconds: round(s.memory_mb_ms / 1000, 3),
    peak_memory_mb: round(s.memory_peak_bytes / MIB, 1),
    egress_bytes: s.egress_bytes,
    ingress_bytes: s.ingress_bytes,
  };
}

function sumAll(sums: UsageSums[]): Omit<UsageSums, 'key'> {
  const t = { jobs: 0, wall_ms: 0, cpu_us: 0, memory_mb_ms: 0, memory_peak_bytes: 0, egress_bytes: 0, ingress_bytes: 0 };
  for (const s of sums) {
    t.jobs += s.jobs;
    t.wall_ms += s.wall_ms;
    t.cpu_us += s.cpu_us;
    t.memory_mb_ms += s.memory_mb_ms;
    t.memory_peak_bytes = Math.max(t.memory_peak_bytes, s.memory_peak_bytes);
    t.egress_bytes += s.egress_bytes;
    t.ingress_bytes += s.ingress_bytes;
  }
  return t;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function startOfMonthUtc(ms: number): string {
  const d = new Date(ms);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)).toISOString();
}
