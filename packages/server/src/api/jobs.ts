import type { JobStatus } from '@mags/shared';
import type { FastifyPluginAsyncZod, ZodTypeProvider } from 'fastify-type-provider-zod';
import type { JobsService } from '../services/jobs.js';
import { userOf } from './auth.js';
import {
  AccessAnswer,
  AccessBody,
  IdParams,
  JobStatusSchema,
  ListAnswer,
  ListQuery,
  PatchBody,
  PoolStatusAnswer,
  StopAnswer,
  SubmitAnswer,
  SubmitV1Body,
  SubmitV2Body,
  errorResponses,
  presentJob,
  JobDetailsSchema,
  presentJobDetails,
} from './schemas.js';
import type { PoolStatus } from '../services/types.js';
import { z } from 'zod';

export interface JobRoutesOptions {
  jobs: JobsService;
  poolStatus: () => PoolStatus;
  /** The public URL of a label as the server answers it now (absent: the stored `url`). */
  urlOf?: (label: string) => string;
}

/** The Mags jobs API: submit (v1, v2), list, status, access, settings, stop, pool status. */
export const jobRoutes: FastifyPluginAsyncZod<JobRoutesOptions> = async (app, { jobs, poolStatus, urlOf }) => {
  for (const version of [1, 2] as const) {
    app.post(
      `/api/v${version}/mags-jobs`,
      {
        schema: {
          tags: ['jobs'],
          summary: version === 1 ? 'Submit a job' : 'Submit a job (v2: vcpus, memory_mb, rootfs_type)',
          body: version === 1 ? SubmitV1Body : SubmitV2Body,
          response: { 202: SubmitAnswer, ...errorResponses },
        },
      },
      async (request, reply) => {
        const b = request.body as z.infer<typeof SubmitV2Body>;
        const job = await jobs.submit(userOf(request), { ...b, timeout_seconds: b.timeout_seconds ?? b.timeout ?? null }, version);
        return reply.code(202).send({ request_id: job.request_id, status: 'accepted', message: 'Job submitted; it starts in a sandbox now' });
      },
    );
  }

  app.get(
    '/api/v1/mags-jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: "List the caller's jobs, newest first",
        querystring: ListQuery,
        response: { 200: ListAnswer, ...errorResponses },
      },
    },
    async (request) => {
      const { page, page_size, status, since } = request.query;
      const statuses = status?.split(',') as JobStatus[] | undefined;
      const { jobs: list, total } = await jobs.list(userOf(request), page, page_size, { statuses, createdSince: since });
      return { jobs: list.map((j) => presentJob(j, jobs.sandboxState(j), urlOf)), page, page_size, total };
    },
  );

  app.get(
    '/api/v1/mags-jobs/pool-status',
    { schema: { tags: ['jobs'], summary: 'Warm pool of sandboxes', response: { 200: PoolStatusAnswer, ...errorResponses } } },
    async () => poolStatus(),
  );

  // The stdin upload: the raw request body is the script's stdin, read as the script takes it.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    scope.withTypeProvider<ZodTypeProvider>().put(
      '/api/v1/mags-jobs/:id/stdin',
      {
        schema: {
          tags: ['jobs'],
          summary: 'Stream the stdin of a job submitted with "stdin": true (ours); answers when the script read it to the end',
          description: 'Any content type; the body is streamed to the script as it reads it (never held whole). Answers 200 {"bytes": n} once the script\'s stdin reached EOF or the job ended.',
          params: IdParams,
          response: { 200: z.object({ bytes: z.number().int().describe('Bytes the script\'s stdin took') }).meta({ id: 'StdinAnswer' }), ...errorResponses },
        },
      },
      async (request, reply) => {
        const body = (request.body ?? request.raw) as AsyncIterable<Buffer>;
        // An interactive session's input may pause for minutes: no idle limit on this socket.
        request.raw.socket?.setTimeout?.(0);
        const result = await jobs.putStdin(userOf(request), request.params.id, body);
        // The rest of a body the script did not read is not waited for.
        if (!request.raw.readableEnded) reply.header('connection', 'close');
        return result;
      },
    );
  });

  app.post(
    '/api/v1/mags-jobs/:id/resize',
    {
      schema: {
        tags: ['jobs'],
        summary: 'New terminal size of a job submitted with "tty" (ours)',
        params: IdParams,
        body: z.object({ cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) }).meta({ id: 'ResizeBody' }),
        response: { 200: z.object({ success: z.literal(true) }), ...errorResponses },
      },
    },
    async (request) => {
      await jobs.resize(userOf(request), request.params.id, request.body.cols, request.body.rows);
      return { success: true as const };
    },
  );

  app.delete(
    '/api/v1/mags-jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Delete a job that ended and its output (ours); 409 CONFLICT while it is queued, running or sleeping',
        params: IdParams,
        response: { 200: z.object({ success: z.literal(true), request_id: z.string() }).meta({ id: 'DeleteJobAnswer' }), ...errorResponses },
      },
    },
    async (request) => {
      const job = await jobs.remove(userOf(request), request.params.id);
      return { success: true as const, request_id: job.request_id };
    },
  );

  app.get(
    '/api/v1/mags-jobs/:id/status',
    { schema: { tags: ['jobs'], summary: "One job's status", params: IdParams, response: { 200: JobStatusSchema, ...errorResponses } } },
    async (request) => {
      const job = await jobs.get(userOf(request), request.params.id);
      return presentJob(job, jobs.sandboxState(job), urlOf);
    },
  );

  app.get(
    '/api/v1/mags-jobs/:id/details',
    {
      schema: {
        tags: ['jobs'],
        summary: "One job's status plus what it was submitted with: script, limits, environment variable names (ours)",
        params: IdParams,
        response: { 200: JobDetailsSchema, ...errorResponses },
      },
    },
    async (request) => presentJobDetails(await jobs.get(userOf(request), request.params.id), urlOf),
  );

  app.post(
    '/api/v1/mags-jobs/:id/access',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Enable URL access (port) or SSH access (port 22)',
        params: IdParams,
        body: AccessBody.optional(),
        response: { 200: AccessAnswer, ...errorResponses },
      },
    },
    async (request) => jobs.access(userOf(request), request.params.id, request.body?.port ?? 8080, { auth: request.body?.auth ?? undefined, requestHost: request.headers.host }),
  );

  app.patch(
    '/api/v1/mags-jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Update startup_command and no_sleep',
        params: IdParams,
        body: PatchBody,
        response: { 200: JobStatusSchema.extend({ success: z.literal(true) }), ...errorResponses },
      },
    },
    async (request) => {
      const job = await jobs.update(userOf(request), request.params.id, request.body);
      return { success: true as const, ...presentJob(job, jobs.sandboxState(job), urlOf) };
    },
  );

  app.post(
    '/api/v1/mags-jobs/:id/stop',
    { schema: { tags: ['jobs'], summary: 'Stop a job (ours: path inferred)', params: IdParams, response: { 200: StopAnswer, ...errorResponses } } },
    async (request) => {
      const job = await jobs.stop(userOf(request), request.params.id);
      return { success: true as const, request_id: job.request_id, status: job.status };
    },
  );
};
