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
        'Why the script ended (ours): exited (by itself, any code), timeout, oom, signaled, cancelled (stopped by its owner), sandbox_failed, server_shutdown; null while pending or running',
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
  })
  .meta({ id: 'JobStatus' });

export type JobStatusBody = z.infer<typeof JobStatusSchema>;

/** The wire fields of a job, in the schema's order: every field of JobStatusSchema is read from the stored job. */
const JOB_STATUS_FIELDS = Object.keys(JobStatusSchema.shape) as Array<keyof JobStatusBody>;
/** Compile-time check that the stored job has every wire field with a type the schema accepts. */
const STORED_JOB_FITS_WIRE: Pick<Job, keyof JobStatusBody> extends JobStatusBody ? true : never = true;
void STORED_JOB_FITS_WIRE;

export function presentJob(job: Job): JobStatusBody {
  const body: Partial<Record<keyof JobStatusBody, unknown>> = {};
  for (const key of JOB_STATUS_FIELDS) body[key] = job[key];
  return body as JobStatusBody;
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

export const AccessBody = z.object({ port: z.number().int().min(1).max(65535).default(8080) });

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
