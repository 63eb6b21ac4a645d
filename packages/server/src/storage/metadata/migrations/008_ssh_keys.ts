import type { Kysely, Migration } from 'kysely';

/** `ssh_keys`: public keys the SSH gateway accepts, one job each (the private halves are never stored). */
export function migration008(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('ssh_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('job_id', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull().unique())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema.createIndex('ssh_keys_job_idx').on('ssh_keys').columns(['job_id', 'revoked_at']).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('ssh_keys').execute();
    },
  };
}
