import { JOB_LIMITS } from '@mags/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { CronService } from '../cron/service.js';
import type { ScheduleJobOptions, ScheduleRecord } from '../storage/metadata/cron.js';
import { userOf } from './auth.js';
import { errorResponses } from './schemas.js';

const text = () => z.string().refine((s) => !s.includes('\u0000'), { message: 'must not contain NUL characters' });
const optText = (max: number) => text().pipe(z.string().max(max)).nullish();

/** The submit options a schedule's job gets (same names and limits as POST /api/v1/mags-jobs). */
const jobOptionFields = {
  workspace_id: optText(JOB_LIMITS.nameMaxLength),
  base_workspace_id: optText(JOB_LIMITS.nameMaxLength),
  persistent: z.boolean().nullish(),
  no_sleep: z.boolean().nullish(),
  startup_command: optText(64 * 1024),
  environment: z.record(z.string(), text()).nullish(),
  file_ids: z.array(z.string().max(256)).max(100).nullish(),
  disk_gb: z.number().int().min(1).max(JOB_LIMITS.maxDiskGb).nullish(),
  vcpus: z.number().int().min(1).max(JOB_LIMITS.maxVcpus).nullish(),
  memory_mb: z.number().int().min(JOB_LIMITS.minMemoryMb).max(JOB_LIMITS.maxMemoryMb).nullish(),
  timeout_seconds: z.number().int().min(1).max(7 * 24 * 3600).nullish(),
  webhook_url: optText(2048).describe('POSTed a signed event when each run ends (docs/webhooks.md)'),
};
const JOB_OPTION_KEYS = Object.keys(jobOptionFields) as Array<keyof ScheduleJobOptions>;

const scheduleFields = {
  name: text().pipe(z.string().min(1).max(JOB_LIMITS.nameMaxLength)).describe('Unique per user; the jobs it submits get this name'),
  cron_expression: text().pipe(z.string().min(1).max(256)).describe('5 fields (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly'),
  timezone: text().pipe(z.string().min(1).max(64)).optional().describe('IANA time zone, default UTC'),
  script: text().pipe(z.string().min(1)).describe('Shell script each run executes'),
  enabled: z.boolean().optional().describe('Default true'),
  overlap: z.enum(['skip', 'queue', 'replace']).optional().describe('When the previous run is still pending or running: skip (default), queue (run after it), replace (stop it)'),
  catch_up: z.enum(['one', 'none']).optional().describe('Firings missed while the server was down: one (default: run once at start) or none'),
  jitter_seconds: z.number().int().min(0).max(3600).optional().describe('Each firing waits a random 0..jitter_seconds, to spread @hourly jobs'),
};

const CreateBody = z.object({ ...scheduleFields, ...jobOptionFields }).meta({ id: 'CreateSchedule' });
const PatchBody = z
  .object({
    name: scheduleFields.name.optional(),
    cron_expression: scheduleFields.cron_expression.optional(),
    timezone: scheduleFields.timezone,
    script: scheduleFields.script.optional(),
    enabled: scheduleFields.enabled,
    overlap: scheduleFields.overlap,
    catch_up: scheduleFields.catch_up,
    jitter_seconds: scheduleFields.jitter_seconds,
    ...jobOptionFields,
  })
  .meta({ id: 'UpdateSchedule' });

const ScheduleSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    cron_expression: z.string(),
    timezone: z.string(),
    script: z.string(),
    enabled: z.boolean(),
    overlap: z.enum(['skip', 'queue', 'replace']),
    catch_up: z.enum(['one', 'none']),
    jitter_seconds: z.number().int(),
    workspace_id: z.string().nullable(),
    base_workspace_id: z.string().nullable(),
    persistent: z.boolean().nullable(),
    no_sleep: z.boolean().nullable(),
    startup_command: z.string().nullable(),
    environment: z.record(z.string(), z.string()).nullable(),
    file_ids: z.array(z.string()).nullable(),
    disk_gb: z.number().int().nullable(),
    vcpus: z.number().int().nullable(),
    memory_mb: z.number().int().nullable(),
    timeout_seconds: z.number().int().nullable(),
    webhook_url: z.string().nullable(),
    next_run_at: z.string().nullable().describe('Next scheduled time (before jitter); null when disabled'),
    next_runs: z.array(z.string()).describe('The next 3 scheduled times'),
    last_run_at: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: 'Schedule' });

const RunSchema = z
  .object({
    schedule_id: z.string(),
    scheduled_for: z.string().describe('The scheduled time this firing stands for'),
    trigger: z.enum(['schedule', 'catch_up', 'manual']),
    outcome: z.enum(['submitted', 'skipped', 'queued', 'failed']),
    job_id: z.string().nullable().describe('The job it submitted (request_id)'),
    job_status: z.string().nullable(),
    message: z.string().nullable().describe('Why it was skipped, queued or failed'),
    created_at: z.string(),
  })
  .meta({ id: 'ScheduleRun' });

const Params = z.object({ id: z.string().min(1).describe('Schedule id or name') });

/** Splits a request body into the schedule's own fields and its job options. */
function split(body: Record<string, unknown>): { own: Record<string, unknown>; job_options?: ScheduleJobOptions } {
  const own: Record<string, unknown> = {};
  const job: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (v === undefined) continue;
    if ((JOB_OPTION_KEYS as string[]).includes(k)) job[k] = v;
    else own[k] = v;
  }
  return { own, job_options: Object.keys(job).length > 0 ? (job as ScheduleJobOptions) : undefined };
}

/** Cron schedules (ours): CRUD, the firings of a schedule, run now. */
export const cronRoutes: FastifyPluginAsyncZod<{ cron: CronService }> = async (app, { cron }) => {
  const present = (s: ScheduleRecord): z.infer<typeof ScheduleSchema> => {
    const opt = (k: keyof ScheduleJobOptions) => (s.job_options[k] ?? null) as never;
    const options = Object.fromEntries(JOB_OPTION_KEYS.map((k) => [k, opt(k)]));
    return {
      id: s.id,
      name: s.name,
      cron_expression: s.cron_expression,
      timezone: s.timezone,
      script: s.script,
      enabled: s.enabled,
      overlap: s.overlap,
      catch_up: s.catch_up,
      jitter_seconds: s.jitter_seconds,
      ...(options as Record<keyof ScheduleJobOptions, never>),
      next_run_at: s.next_run_at,
      next_runs: cron.nextRuns(s),
      last_run_at: s.last_run_at,
      created_at: s.created_at,
      updated_at: s.updated_at,
    };
  };

  app.post(
    '/api/v1/mags-cron',
    { schema: { tags: ['cron'], summary: 'Create a cron schedule', body: CreateBody, response: { 201: ScheduleSchema, ...errorResponses } } },
    async (request, reply) => {
      const { own, job_options } = split(request.body);
      const s = await cron.create(userOf(request), { ...(own as { name: string; cron_expression: string; script: string }), job_options });
      return reply.code(201).send(present(s));
    },
  );
  app.get(
    '/api/v1/mags-cron',
    { schema: { tags: ['cron'], summary: "List the caller's schedules", response: { 200: z.object({ schedules: z.array(ScheduleSchema) }).meta({ id: 'ScheduleList' }), ...errorResponses } } },
    async (request) => ({ schedules: (await cron.list(userOf(request))).map(present) }),
  );
  app.get(
    '/api/v1/mags-cron/:id',
    { schema: { tags: ['cron'], summary: 'One schedule', params: Params, response: { 200: ScheduleSchema, ...errorResponses } } },
    async (request) => present(await cron.get(userOf(request), request.params.id)),
  );
  app.patch(
    '/api/v1/mags-cron/:id',
    { schema: { tags: ['cron'], summary: 'Change a schedule (enable, disable, expression, options)', params: Params, body: PatchBody, response: { 200: ScheduleSchema, ...errorResponses } } },
    async (request) => {
      const { own, job_options } = split(request.body);
      return present(await cron.update(userOf(request), request.params.id, { ...own, job_options }));
    },
  );
  app.delete(
    '/api/v1/mags-cron/:id',
    {
      schema: {
        tags: ['cron'],
        summary: 'Delete a schedule (its jobs stay)',
        params: Params,
        response: { 200: z.object({ success: z.literal(true), id: z.string() }), ...errorResponses },
      },
    },
    async (request) => ({ success: true as const, id: (await cron.remove(userOf(request), request.params.id)).id }),
  );
  app.get(
    '/api/v1/mags-cron/:id/runs',
    {
      schema: {
        tags: ['cron'],
        summary: "A schedule's firings, newest first",
        params: Params,
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(50) }),
        response: { 200: z.object({ runs: z.array(RunSchema) }).meta({ id: 'ScheduleRunList' }), ...errorResponses },
      },
    },
    async (request) => ({ runs: await cron.runs(userOf(request), request.params.id, request.query.limit) }),
  );
  app.post(
    '/api/v1/mags-cron/:id/run',
    { schema: { tags: ['cron'], summary: 'Fire a schedule now (its overlap policy applies)', params: Params, response: { 202: RunSchema.omit({ job_status: true }), ...errorResponses } } },
    async (request, reply) => reply.code(202).send(await cron.runNow(userOf(request), request.params.id)),
  );
};
