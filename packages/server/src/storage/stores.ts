import type { Kysely } from 'kysely';
import { KyselyLogStore } from './logs/kysely-log-store.js';
import type { LogsDatabase } from './logs/schema.js';
import type { LogStore } from './logs/store.js';
import { migrateToLatest, openDatabase, type Dialect } from './metadata/db.js';
import { KyselyJobStore } from './metadata/kysely-jobs.js';
import { KyselyUserStore } from './metadata/kysely-users.js';
import { KyselySessionStore } from './metadata/kysely-sessions.js';
import type { SessionStore } from './metadata/sessions.js';
import type { JobStore, UserStore } from './metadata/store.js';
import { KyselyUploadStore } from './metadata/kysely-uploads.js';
import { KyselySshKeyStore } from './metadata/kysely-ssh-keys.js';
import type { SshKeyStore } from './metadata/ssh-keys.js';
import { KyselyWorkspaceStore } from './metadata/kysely-workspaces.js';
import type { UploadStore } from './metadata/uploads.js';
import { KyselyUsageStore } from './metadata/kysely-usage.js';
import type { UsageStore } from './metadata/usage.js';
import { KyselyUrlRouteStore } from './metadata/kysely-url-routes.js';
import type { UrlRouteStore } from './metadata/url-routes.js';
import type { WorkspaceStore } from './metadata/workspaces.js';
import type { CronStore } from './metadata/cron.js';
import { KyselyCronStore } from './metadata/kysely-cron.js';
import type { WebhookStore } from './metadata/webhooks.js';
import { KyselyWebhookStore } from './metadata/kysely-webhooks.js';

/** The stores of one metadata database; `close()` closes the database they share. */
export interface Stores {
  readonly dialect: Dialect;
  users: UserStore;
  /** Dashboard passwords, sessions and invites. */
  sessions: SessionStore;
  jobs: JobStore;
  logs: LogStore;
  workspaces: WorkspaceStore;
  uploads: UploadStore;
  usage: UsageStore;
  cron: CronStore;
  webhooks: WebhookStore;
  sshKeys: SshKeyStore;
  urlRoutes: UrlRouteStore;
  /** Migrations applied by this open, in order (empty when the database was up to date). */
  readonly migrated: string[];
  close(): Promise<void>;
}

/**
 * Opens the metadata database (`postgres://...` URL, else the SQLite file), runs pending
 * migrations and returns its stores. The daemon and the tests build their stores only here.
 */
export async function openStores(target: { url?: string; sqlitePath: string }): Promise<Stores> {
  const opened = openDatabase(target);
  let migrated: string[];
  try {
    migrated = await migrateToLatest(opened);
  } catch (err) {
    await opened.db.destroy();
    throw err;
  }
  return {
    dialect: opened.dialect,
    users: new KyselyUserStore(opened.db),
    sessions: new KyselySessionStore(opened.db),
    jobs: new KyselyJobStore(opened.db),
    // The log store sees its own table and when jobs ended (Database extends LogsDatabase).
    logs: new KyselyLogStore(opened.db as unknown as Kysely<LogsDatabase>),
    workspaces: new KyselyWorkspaceStore(opened.db),
    uploads: new KyselyUploadStore(opened.db),
    usage: new KyselyUsageStore(opened.db),
    cron: new KyselyCronStore(opened.db),
    webhooks: new KyselyWebhookStore(opened.db),
    sshKeys: new KyselySshKeyStore(opened.db),
    urlRoutes: new KyselyUrlRouteStore(opened.db),
    migrated,
    close: () => opened.db.destroy(),
  };
}
