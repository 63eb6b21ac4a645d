import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
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
}

/** The Mags jobs API: submit (v1, v2), list, status, access, settings, stop, pool status. */
export const jobRoutes: FastifyPluginAsyncZod<JobRoutesOptions> = async (app, { jobs, poolStatus }) => {
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
      const { page, page_size, status } = request.query;
      const { jobs: list, total } = await jobs.list(userOf(request), page, page_size, status);
      return { jobs: list.map((j) => presentJob(j, jobs.sandboxState(j))), page, page_size, total };
    },
  );

  app.get(
    '/api/v1/mags-jobs/pool-status',
    { schema: { tags: ['jobs'], summary: 'Warm pool of sandboxes', response: { 200: PoolStatusAnswer, ...errorResponses } } },
    async () => poolStatus(),
  );

  app.get(
    '/api/v1/mags-jobs/:id/status',
    { schema: { tags: ['jobs'], summary: "One job's status", params: IdParams, response: { 200: JobStatusSchema, ...errorResponses } } },
    async (request) => {
      const job = await jobs.get(userOf(request), request.params.id);
      return presentJob(job, jobs.sandboxState(job));
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
    async (request) => presentJobDetails(await jobs.get(userOf(request), request.params.id)),
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
      return { success: true as const, ...presentJob(job, jobs.sandboxState(job)) };
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
