import type { Kysely, Migration } from 'kysely';

/** `jobs.end_reason`: why the job's script ended (one of END_REASONS in @mags/shared), null before. */
export function migration003(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('jobs').addColumn('end_reason', 'text').execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.alterTable('jobs').dropColumn('end_reason').execute();
    },
  };
}
