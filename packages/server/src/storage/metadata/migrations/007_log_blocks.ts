import type { Kysely, Migration } from 'kysely';

/**
 * `job_log_blocks`: output lines stored in blocks of consecutive lines of one job (storage/logs/
 * blocks.ts), so many tiny lines cost one row per block, not one per line. `job_logs` stays for
 * lines stored before this migration; reads merge both.
 */
export function migration007(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('job_log_blocks')
        .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.request_id').onDelete('cascade'))
        .addColumn('first_seq', 'integer', (c) => c.notNull())
        .addColumn('last_seq', 'integer', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('job_log_blocks_pk', ['job_id', 'first_seq'])
        .execute();
      await db.schema.createIndex('job_log_blocks_last').unique().on('job_log_blocks').columns(['job_id', 'last_seq']).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('job_log_blocks').execute();
    },
  };
}
