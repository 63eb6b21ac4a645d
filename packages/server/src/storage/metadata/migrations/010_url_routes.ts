import type { Kysely, Migration } from 'kysely';

/** `url_routes`: public URLs (job ports and workspace aliases), one row per subdomain. */
export function migration010(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('url_routes')
        .addColumn('subdomain', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('job_id', 'text')
        .addColumn('workspace_id', 'text')
        .addColumn('port', 'integer', (c) => c.notNull())
        .addColumn('auth', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('url_routes_job_port_idx').on('url_routes').columns(['job_id', 'port']).unique().execute();
      await db.schema.createIndex('url_routes_user_idx').on('url_routes').columns(['user_id', 'kind']).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('url_routes').execute();
    },
  };
}
