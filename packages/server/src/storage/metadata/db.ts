import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Migration } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { migration001 } from './migrations/001_initial.js';
import { migration002 } from './migrations/002_log_text_escaped.js';
import { migration003 } from './migrations/003_end_reason.js';
import { migration004 } from './migrations/004_workspaces.js';
import { migration005 } from './migrations/005_uploads.js';
import { migration006 } from './migrations/006_usage.js';
import { migration007 } from './migrations/007_cron_webhooks.js';
import { migration008 } from './migrations/008_ssh_keys.js';
import { migration009Sessions } from './migrations/009_sessions.js';
import { migration010 } from './migrations/010_url_routes.js';
import { migration011 } from './migrations/011_log_chunks.js';

export type Dialect = 'sqlite' | 'postgres';

export interface OpenedDatabase {
  db: Kysely<Database>;
  dialect: Dialect;
}

/**
 * Opens the metadata database: `postgres://...` URLs use `pg`, anything else is a SQLite file path
 * (WAL journal, 5 s busy timeout, foreign keys on).
 */
export function openDatabase(target: { url?: string; sqlitePath: string }): OpenedDatabase {
  if (target.url && /^postgres(ql)?:\/\//.test(target.url)) {
    const pool = new pg.Pool({ connectionString: target.url, max: 10 });
    return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), dialect: 'postgres' };
  }
  if (target.sqlitePath !== ':memory:') mkdirSync(dirname(target.sqlitePath), { recursive: true });
  const sqlite = new SQLite(target.sqlitePath);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('synchronous = NORMAL');
  return { db: new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }), dialect: 'sqlite' };
}

/** The numbered migrations, in order. Add new ones as `00N_<what>.ts` and list them here. */
export function migrations(dialect: Dialect): Record<string, Migration> {
  return {
    '001_initial': migration001(dialect),
    '002_log_text_escaped': migration002(),
    '003_end_reason': migration003(),
    '004_workspaces': migration004(),
    '005_uploads': migration005(),
    '006_usage': migration006(),
    '007_cron_webhooks': migration007(),
    '008_ssh_keys': migration008(),
    '009_sessions': migration009Sessions(),
    '010_url_routes': migration010(),
    '011_log_chunks': migration011(dialect),
  };
}

/** Runs every migration not yet applied; throws with the failing migration's name. */
export async function migrateToLatest(opened: OpenedDatabase): Promise<string[]> {
  const migrator = new Migrator({
    db: opened.db,
    provider: { getMigrations: async () => migrations(opened.dialect) },
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    const err = new Error(`database migration ${failed?.migrationName ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`);
    (err as Error & { cause?: unknown }).cause = error;
    throw err;
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * Lets timers and I/O run between the steps of a long maintenance job: better-sqlite3 runs each
 * statement on the event loop, and awaiting its result alone never yields to them.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The retention cutoff that still keeps an owner's newest `keep` rows: the smaller of `before` and
 * the key of the owner's keep-th newest row (an index seek on (owner, key)); undefined when the
 * owner has `keep` rows or fewer, so nothing of it may go.
 */
export async function keepNewestBound(
  db: Kysely<Database>,
  q: { table: 'schedule_runs' | 'webhook_deliveries'; owner: string; ownerId: string | null; key: string },
  before: string,
  keep: number,
): Promise<string | undefined> {
  if (keep <= 0) return before;
  const owner = q.ownerId === null ? sql`${sql.ref(q.owner)} IS NULL` : sql`${sql.ref(q.owner)} = ${q.ownerId}`;
  const r = await sql<{ k: string }>`
    SELECT ${sql.ref(q.key)} AS k FROM ${sql.table(q.table)} WHERE ${owner}
    ORDER BY ${sql.ref(q.key)} DESC LIMIT 1 OFFSET ${keep - 1}`.execute(db);
  const nth = r.rows[0]?.k;
  if (nth === undefined) return undefined;
  return nth < before ? nth : before;
}
