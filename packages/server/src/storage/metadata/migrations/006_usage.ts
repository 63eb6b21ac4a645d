import type { Kysely, Migration } from 'kysely';

/**
 * `usage_records`: what one sandbox lifetime of a job used (a job has one; a persistent job one per
 * wake), appended when the sandbox is given back. `user_quotas`: limits an admin set for a user.
 */
export function migration006(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('usage_records')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('job_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('ended_at', 'text', (c) => c.notNull())
        .addColumn('wall_ms', 'bigint', (c) => c.notNull())
        .addColumn('cpu_us', 'bigint', (c) => c.notNull())
        .addColumn('memory_peak_bytes', 'bigint', (c) => c.notNull())
        .addColumn('memory_mb', 'integer', (c) => c.notNull())
        .addColumn('vcpus', 'real', (c) => c.notNull())
        .addColumn('egress_bytes', 'bigint', (c) => c.notNull())
        .addColumn('ingress_bytes', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('usage_records_user_idx').on('usage_records').columns(['user_id', 'ended_at']).execute();
      await db.schema.createIndex('usage_records_ended_idx').on('usage_records').columns(['ended_at']).execute();
      await db.schema
        .createTable('user_quotas')
        .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
        .addColumn('max_concurrent_sandboxes', 'integer')
        .addColumn('sandbox_hours_per_month', 'real')
        .addColumn('storage_gb', 'real')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('user_quotas').execute();
      await db.schema.dropTable('usage_records').execute();
    },
  };
}
