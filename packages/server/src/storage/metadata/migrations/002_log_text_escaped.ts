import type { Kysely, Migration } from 'kysely';

/** `job_logs.escaped`: 1 when the line's text is stored escaped (storage/logs/text-encoding.ts). */
export function migration002(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('job_logs').addColumn('escaped', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.alterTable('job_logs').dropColumn('escaped').execute();
    },
  };
}
