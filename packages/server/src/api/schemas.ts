import { END_REASONS, ERROR_CODES, JOB_LIMITS, JOB_STATUSES, type ErrorCode } from '@mags/shared';
import { z } from 'zod';
import type { Job, LogLine } from '../services/types.js';
import { levelForStream } from '@mags/shared';

/** A string without NUL characters (PostgreSQL text cannot hold them). */
const text = () => z.string().refine((s) => !s.includes('\u0000'), { message: 'must not contain NUL characters' });
const optText = (max: number) => text().pipe(z.string().max(max)).nullish();

/** Every code of the registry, so the spec (and the clients generated from it) list them all. */
const errorCodes = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];

export const ErrorBodySchema = z
  .object({
    error: z.string().describe('What went wrong and what to do'),
    code: z.enum(errorCodes).describe('Stable error code (docs/errors.md)'),
    hint: z.string().optional(),
  })
  .meta({ id: 'Error' });

/** Error responses every authenticated route can give. */
export const errorResponses = { '4xx': ErrorBodySchema, '5xx': ErrorBodySchema };

const submitFields = {
  script: text().describe('Shell script run by bash in /root'),
  type: z.literal('inline', { error: `'type' is required and must be "inline"` }),
  name: optText(JOB_LIMITS.nameMaxLength).describe('Job name; {id} in other calls accepts it'),
  workspace_id: optText(JOB_LIMITS.nameMaxLength),
  base_workspace_id: optText(JOB_LIMITS.nameMaxLength),
  persistent: z.boolean().nullish(),
  no_sleep: z.boolean().nullish().describe('Needs persistent: true'),
  startup_command: optText(64 * 1024),
  environment: z.record(z.string(), text()).nullish().describe('Environment variables of the script'),
  file_ids: z.array(z.string().max(256)).max(100).nullish(),
  tty: z
    .object({ cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) })
    .nullish()
    .describe('Run the script on a terminal of this size (ours); its input is PUT .../stdin, its size POST .../resize'),
  stdin: z.boolean().nullish().describe("true = the script's stdin is the body of PUT /api/v1/mags-jobs/{id}/stdin (ours); else /dev/null"),
  disk_gb: z.number().int().min(1).max(JOB_LIMITS.maxDiskGb).nullish().describe(`Writable layer size, default ${JOB_LIMITS.defaultDiskGb}`),
  timeout_seconds: z.number().int().min(1).max(7 * 24 * 3600).nullish().describe('Wall-clock limit (ours); default: the server setting'),
  timeout: z.number().int().min(1).max(7 * 24 * 3600).nullish().describe('Alias of timeout_seconds (ours)'),
  webhook_url: optText(2048).describe('POSTed a signed event when the job ends (ours; docs/webhooks.md)'),
};

export const SubmitV1Body = z.object(submitFields).meta({ id: 'SubmitJobV1' });

export const SubmitV2Body = z
  .object({
    ...submitFields,
    vcpus: z.number().int().min(1).max(JOB_LIMITS.maxVcpus).nullish().describe(`Default ${JOB_LIMITS.defaultVcpus}`),
    memory_mb: z.number().int().min(JOB_LIMITS.minMemoryMb).max(JOB_LIMITS.maxMemoryMb).nullish().describe(`Default ${JOB_LIMITS.defaultMemoryMb}`),
    rootfs_type: optText(64),
  })
  .meta({ id: 'SubmitJobV2' });

export const SubmitAnswer = z
  .object({ request_id: z.string(), status: z.literal('accepted'), message: z.string() })
  .meta({ id: 'SubmitJobAnswer' });

export const JobStatusSchema = z
  .object({
    request_id: z.string(),
    name: z.string().nullable(),
    status: z.enum(JOB_STATUSES),
    vm_id: z.string().nullable(),
    workspace_id: z.string().nullable(),
    base_workspace_id: z.string().nullable(),
    exit_code: z.number().int().nullable(),
    end_reason: z
      .enum(END_REASONS)
      .nullable()
      .describe(
        'Why the script ended (ours): exited (by itself, any code), timeout, oom, signaled, cancelled (stopped by its owner), sandbox_failed, server_shutdown; null while pending or while the script runs (a persistent job keeps `exited` while it stays up)',
      ),
    subdomain: z.string().nullable(),
    url: z.string().nullable(),
    script_duration_ms: z.number().int().nullable(),
    started_at: z.string().nullable(),
    created_at: z.string(),
    completed_at: z.string().nullable(),
    persistent: z.boolean(),
    no_sleep: z.boolean(),
    startup_command: z.string().nullable(),
    error_message: z.string().nullable().describe('Why the job ended in error'),
    sandbox_state: z
      .enum(['running', 'frozen', 'starting', 'sleeping'])
      .nullable()
      .optional()
      .describe('Where a persistent job\'s sandbox is now (ours): running, frozen (idle, memory kept; status stays `running`), starting (a wake), sleeping; null for other jobs'),
  })
  .meta({ id: 'JobStatus' });

export type JobStatusBody = z.infer<typeof JobStatusSchema>;

/** Wire fields that are not stored with the job but come from the running server. */
type LiveField = 'sandbox_state';
type StoredField = Exclude<keyof JobStatusBody, LiveField>;
/** The stored wire fields of a job, in the schema's order: each is read from the stored job. */
const JOB_STATUS_FIELDS = Object.keys(JobStatusSchema.shape).filter((k) => k !== 'sandbox_state') as StoredField[];
/** Compile-time check that the stored job has every stored wire field with a type the schema accepts. */
const STORED_JOB_FITS_WIRE: Pick<Job, StoredField> extends Omit<JobStatusBody, LiveField> ? true : never = true;
void STORED_JOB_FITS_WIRE;

/** The status answer of a job; `sandboxState` is the lifecycle manager's view of a persistent job. */
export function presentJob(job: Job, sandboxState: JobStatusBody['sandbox_state'] = null, urlOf?: (label: string) => string): JobStatusBody {
  const body: Partial<Record<keyof JobStatusBody, unknown>> = {};
  for (const key of JOB_STATUS_FIELDS) body[key] = job[key];
  // The URL as this server answers it now (its domain or public port may have changed since the grant).
  if (job.subdomain && job.url && urlOf) body.url = urlOf(job.subdomain);
  body.sandbox_state = sandboxState;
  return body as JobStatusBody;
}

export const JobDetailsSchema = JobStatusSchema.extend({
  script: z.string(),
  vcpus: z.number().int(),
  memory_mb: z.number().int(),
  disk_gb: z.number().int(),
  timeout_seconds: z.number().int().nullable().describe('null: the server default'),
  environment_keys: z.array(z.string()).describe('Names of the environment variables (their values are not shown)'),
  file_ids: z.array(z.string()),
  api_version: z.number().int(),
}).meta({ id: 'JobDetails' });

/** A job's status plus what it was submitted with (environment values left out). */
export function presentJobDetails(job: Job, urlOf?: (label: string) => string): z.infer<typeof JobDetailsSchema> {
  return {
    ...presentJob(job, null, urlOf),
    script: job.script,
    vcpus: job.vcpus,
    memory_mb: job.memory_mb,
    disk_gb: job.disk_gb,
    timeout_seconds: job.timeout_seconds,
    environment_keys: Object.keys(job.environment).sort(),
    file_ids: job.file_ids,
    api_version: job.api_version,
  };
}

export const LogEntrySchema = z
  .object({
    timestamp: z.string(),
    level: z.enum(['info', 'error']),
    message: z.string(),
    stream: z.enum(['stdout', 'stderr', 'system']),
    seq: z.number().int(),
  })
  .meta({ id: 'LogEntry' });

export function presentLog(l: LogLine): z.infer<typeof LogEntrySchema> {
  return { timestamp: l.timestamp, level: levelForStream(l.stream), message: l.message, stream: l.stream, seq: l.seq };
}

/** Positive whole number from a query string. */
const queryInt = (min: number) => z.coerce.number().int().min(min);

export const ListQuery = z.object({
  page: queryInt(1).default(1),
  page_size: queryInt(1)
    .default(JOB_LIMITS.defaultPageSize)
    .transform((n) => Math.min(n, JOB_LIMITS.maxPageSize))
    .describe(`Default ${JOB_LIMITS.defaultPageSize}; larger than ${JOB_LIMITS.maxPageSize} is treated as ${JOB_LIMITS.maxPageSize}`),
  status: z
    .string()
    .regex(new RegExp(`^(${JOB_STATUSES.join('|')})(,(${JOB_STATUSES.join('|')}))*$`), `status: one or more of ${JOB_STATUSES.join(', ')}, comma-separated`)
    .optional()
    .describe('Only jobs with one of these statuses, comma-separated (ours)'),
  since: z.iso.datetime({ offset: true }).optional().describe('Only jobs created at or after this ISO 8601 time (ours)'),
});

export const ListAnswer = z
  .object({ jobs: z.array(JobStatusSchema), page: z.number().int(), page_size: z.number().int(), total: z.number().int() })
  .meta({ id: 'JobList' });

export const IdParams = z.object({ id: z.string().min(1).describe('Request id, job name or workspace id') });

/** Largest `limit` a logs request may ask for; without `limit` the answer holds every line (bounded by the output cap). */
export const MAX_LOGS_LIMIT = 10_000;

export const LogsQuery = z.object({
  after: queryInt(0).optional().describe('Only lines with a larger seq (ours)'),
  follow: z.enum(['1', '0', 'true', 'false']).optional().describe('1 = Server-Sent Events: live lines, then an end event (ours)'),
  limit: queryInt(1)
    .max(MAX_LOGS_LIMIT)
    .optional()
    .describe(`At most this many lines, 1 to ${MAX_LOGS_LIMIT} (ours); without it every line, bounded by the output cap`),
  tail: queryInt(0).max(MAX_LOGS_LIMIT).optional().describe(`Only the last n lines, 0 to ${MAX_LOGS_LIMIT} (ours; not with follow)`),
  format: z.enum(['json', 'raw']).optional().describe('raw = the output bytes exactly as written, not lines (ours; see docs/api.md)'),
  stream: z
    .enum(['stdout', 'stderr', 'both'])
    .optional()
    .describe('With format=raw: one stream as application/octet-stream, or both (default) as frames of application/vnd.mags.stream (ours)'),
});

export const LogsAnswer = z.object({ logs: z.array(LogEntrySchema) }).meta({ id: 'JobLogs' });

export const AccessBody = z.object({
  port: z.number().int().min(1).max(65535).default(8080),
  auth: z.enum(['public', 'token']).nullish().describe('URL auth (ours): public (default) or token (the owner\'s API token or a one-time login link)'),
});

/** `success: true` plus the grant's fields (`url`, `subdomain`, `port`; or `ssh_host`, `ssh_port`, `ssh_private_key`, `ssh_user`, `ssh_host_key`). */
export const AccessAnswer = z
  .object({
    success: z.literal(true),
    url: z.string().optional().describe('Public URL of the port'),
    subdomain: z.string().optional(),
    port: z.number().int().optional(),
    auth: z.enum(['public', 'token']).optional().describe('URL auth mode (ours)'),
    login_url: z.string().optional().describe('Token mode: one-time link that sets a session cookie for the URL (ours)'),
    login_url_expires_at: z.string().optional(),
    ssh_host: z.string().optional(),
    ssh_port: z.number().int().optional(),
    ssh_private_key: z.string().optional().describe('A fresh ed25519 key for this job, OpenSSH format (shown once)'),
    ssh_user: z.string().optional().describe('Login user of the SSH gateway (`root`)'),
    ssh_host_key: z.string().optional().describe("The gateway's public host key (`ssh-ed25519 AAAA...`), to pin in known_hosts"),
  })
  .catchall(z.unknown())
  .meta({ id: 'AccessAnswer' });


export const PatchBody = z.object({
  startup_command: optText(64 * 1024),
  no_sleep: z.boolean().nullish(),
});

export const StopAnswer = z.object({ success: z.literal(true), request_id: z.string(), status: z.enum(JOB_STATUSES) });

export const PoolStatusAnswer = z
  .object({
    idle_vms: z.number().int(),
    busy_vms: z.number().int(),
    total_vms: z.number().int(),
    min_pool_size: z.number().int(),
    max_pool_size: z.number().int(),
  })
  .meta({ id: 'PoolStatus' });
