import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../db.js';

/** Users, hashed tokens, jobs and their log lines. */
export function migration001(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('admin', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema.createIndex('tokens_user').on('tokens').column('user_id').execute();

      let jobs = db.schema.createTable('jobs');
      jobs =
        dialect === 'postgres'
          ? jobs.addColumn('num', 'serial', (c) => c.primaryKey())
          : jobs.addColumn('num', 'integer', (c) => c.primaryKey().autoIncrement());
      await jobs
        .addColumn('request_id', 'text', (c) => c.notNull().unique())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('name', 'text')
        .addColumn('workspace_id', 'text')
        .addColumn('base_workspace_id', 'text')
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('script', 'text', (c) => c.notNull())
        .addColumn('persistent', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('no_sleep', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('startup_command', 'text')
        .addColumn('environment', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('file_ids', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('disk_gb', 'integer', (c) => c.notNull())
        .addColumn('vcpus', 'integer', (c) => c.notNull())
        .addColumn('memory_mb', 'integer', (c) => c.notNull())
        .addColumn('rootfs_type', 'text')
        .addColumn('timeout_seconds', 'integer')
        .addColumn('api_version', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('exit_code', 'integer')
        .addColumn('error_message', 'text')
        .addColumn('vm_id', 'text')
        .addColumn('host', 'text')
        .addColumn('subdomain', 'text')
        .addColumn('url', 'text')
        .addColumn('script_duration_ms', 'integer')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('completed_at', 'text')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('jobs_user_num').on('jobs').columns(['user_id', 'num']).execute();
      await db.schema.createIndex('jobs_user_name').on('jobs').columns(['user_id', 'name']).execute();
      await db.schema.createIndex('jobs_user_workspace').on('jobs').columns(['user_id', 'workspace_id']).execute();
      await db.schema.createIndex('jobs_status').on('jobs').column('status').execute();

      await db.schema
        .createTable('job_logs')
        .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.request_id').onDelete('cascade'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('ts', 'text', (c) => c.notNull())
        .addColumn('stream', 'text', (c) => c.notNull())
        .addColumn('text', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('job_logs_pk', ['job_id', 'seq'])
        .execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('job_logs').execute();
      await db.schema.dropTable('jobs').execute();
      await db.schema.dropTable('tokens').execute();
      await db.schema.dropTable('users').execute();
    },
  };
}
