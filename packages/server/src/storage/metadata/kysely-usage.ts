import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { QuotaRecord, UsageGroup, UsageRecord, UsageStore, UsageSums } from './usage.js';

/** Usage records and quotas on Kysely: one code path for SQLite and PostgreSQL. */
export class KyselyUsageStore implements UsageStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insertUsage(row: UsageRecord): Promise<void> {
    await this.db.insertInto('usage_records').values(row).execute();
  }

  async sumUsage(q: { from: string; to: string; groupBy: UsageGroup; userId?: string }): Promise<UsageSums[]> {
    // ISO 8601 text: the first 10 characters are the UTC day on both databases.
    const key = q.groupBy === 'day' ? sql<string>`substr(ended_at, 1, 10)` : q.groupBy === 'job' ? sql<string>`job_id` : sql<string>`user_id`;
    let query = this.db
      .selectFrom('usage_records')
      .select([
        key.as('key'),
        sql<string>`count(distinct job_id)`.as('jobs'),
        sql<string>`sum(wall_ms)`.as('wall_ms'),
        sql<string>`sum(cpu_us)`.as('cpu_us'),
        sql<string>`sum(memory_mb * wall_ms)`.as('memory_mb_ms'),
        sql<string>`max(memory_peak_bytes)`.as('memory_peak_bytes'),
        sql<string>`sum(egress_bytes)`.as('egress_bytes'),
        sql<string>`sum(ingress_bytes)`.as('ingress_bytes'),
      ])
      .where('ended_at', '>=', q.from)
      .where('ended_at', '<', q.to);
    if (q.userId) query = query.where('user_id', '=', q.userId);
    const rows = await query.groupBy(key).orderBy(key).execute();
    // Both drivers may return sums as strings (PostgreSQL bigint/numeric).
    return rows.map((r) => ({
      key: String(r.key),
      jobs: Number(r.jobs),
      wall_ms: Number(r.wall_ms),
      cpu_us: Number(r.cpu_us),
      memory_mb_ms: Number(r.memory_mb_ms),
      memory_peak_bytes: Number(r.memory_peak_bytes),
      egress_bytes: Number(r.egress_bytes),
      ingress_bytes: Number(r.ingress_bytes),
    }));
  }

  async wallMsSince(userId: string, since: string): Promise<number> {
    const row = await this.db
      .selectFrom('usage_records')
      .select(sql<string>`coalesce(sum(wall_ms), 0)`.as('n'))
      .where('user_id', '=', userId)
      .where('ended_at', '>=', since)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async getQuota(userId: string): Promise<QuotaRecord | undefined> {
    const row = await this.db.selectFrom('user_quotas').selectAll().where('user_id', '=', userId).executeTakeFirst();
    return row && { ...row, sandbox_hours_per_month: numOrNull(row.sandbox_hours_per_month), storage_gb: numOrNull(row.storage_gb), max_concurrent_sandboxes: numOrNull(row.max_concurrent_sandboxes) };
  }

  async setQuota(row: QuotaRecord): Promise<void> {
    await this.db
      .insertInto('user_quotas')
      .values(row)
      .onConflict((oc) =>
        oc.column('user_id').doUpdateSet({
          max_concurrent_sandboxes: row.max_concurrent_sandboxes,
          sandbox_hours_per_month: row.sandbox_hours_per_month,
          storage_gb: row.storage_gb,
          updated_at: row.updated_at,
        }),
      )
      .execute();
  }
}

function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}
