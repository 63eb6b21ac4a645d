import type { Generated } from 'kysely';
import type { LogsDatabase } from '../logs/schema.js';
import type { Job, TokenRecord } from './store.js';
import type { SshKeyRecord } from './ssh-keys.js';
import type { InviteRecord, SessionRecord } from './sessions.js';
import type { UploadRecord } from './uploads.js';
import type { QuotaRecord, UsageRecord } from './usage.js';
import type { UrlRouteRecord } from './url-routes.js';
import type { WorkspaceRecord } from './workspaces.js';
import type { ScheduleRecord, ScheduleRunRecord } from './cron.js';
import type { WebhookDeliveryRecord, WebhookEndpointRecord } from './webhooks.js';

/**
 * Table shapes of the metadata database. Booleans are stored as 0/1 integers and timestamps as ISO
 * 8601 text in both SQLite and PostgreSQL so one code path serves both.
 */
export interface Database extends LogsDatabase {
  users: UsersTable;
  tokens: TokensTable;
  jobs: JobsTable;
  workspaces: WorkspaceRecord;
  uploads: UploadRecord;
  sessions: SessionRecord;
  invites: InviteRecord;
  usage_records: UsageRecord;
  user_quotas: QuotaRecord;
  schedules: SchedulesTable;
  schedule_runs: ScheduleRunRecord;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_signing_keys: { user_id: string; secret: string; created_at: string };
  webhook_deliveries: WebhookDeliveryRecord;
  ssh_keys: SshKeyRecord;
  url_routes: UrlRouteRecord;
}

/** A schedule row: `enabled` as 0/1, `job_options` as JSON text. */
export type SchedulesTable = Omit<ScheduleRecord, 'enabled' | 'job_options'> & { enabled: number; job_options: string };

/** An endpoint row: `events` as JSON text. */
export type WebhookEndpointsTable = Omit<WebhookEndpointRecord, 'events'> & { events: string };

export interface UsersTable {
  id: string;
  name: string;
  admin: number;
  created_at: string;
  email: string | null;
  password_hash: string | null;
  disabled_at: string | null;
}

/** Token rows are stored exactly as the store hands them out. */
export type TokensTable = TokenRecord;

/** Job fields stored as 0/1 integers. */
export const JOB_BOOLEAN_COLUMNS = ['persistent', 'no_sleep'] as const satisfies readonly (keyof Job)[];
/** Job fields stored as JSON text (`environment`, an object of strings; `file_ids`, an array of upload ids). */
export const JOB_JSON_COLUMNS = ['environment', 'file_ids'] as const satisfies readonly (keyof Job)[];

type JobBooleanColumn = (typeof JOB_BOOLEAN_COLUMNS)[number];
type JobJsonColumn = (typeof JOB_JSON_COLUMNS)[number];

/**
 * A job row: the store's `Job` with the boolean and JSON columns above as integers and text, plus
 * an insertion counter. Every other field is stored as is (text, or an `integer` column, which both
 * drivers return as a JS number).
 */
export type JobsTable = Omit<Job, JobBooleanColumn | JobJsonColumn> &
  Record<JobBooleanColumn, number> &
  Record<JobJsonColumn, string> & {
    /** Insertion order (newest first listing and FIFO queueing). */
    num: Generated<number>;
  };
