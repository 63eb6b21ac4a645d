import type { Kysely, Migration } from 'kysely';

/** `workspaces`: one row per (user, workspace name) with the image and disk size it was made with. */
export function migration004(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('workspaces')
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('image_version', 'text', (c) => c.notNull())
        .addColumn('disk_gb', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .addColumn('last_sync_at', 'text')
        .addPrimaryKeyConstraint('workspaces_pk', ['user_id', 'name'])
        .execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('workspaces').execute();
    },
  };
}
