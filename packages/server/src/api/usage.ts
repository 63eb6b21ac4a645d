import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../services/errors.js';
import type { UsageMeter } from '../services/usage.js';
import { userOf } from './auth.js';
import { errorResponses } from './schemas.js';

const DAY_MS = 86_400_000;
/** Longest range one usage query may cover. */
const MAX_RANGE_DAYS = 366;

const UsageFields = {
  jobs: z.number().int(),
  wall_seconds: z.number(),
  vcpu_seconds: z.number(),
  memory_mb_seconds: z.number(),
  peak_memory_mb: z.number(),
  egress_bytes: z.number(),
  ingress_bytes: z.number(),
  storage_bytes: z.number().nullable(),
};
const UsageAnswer = z
  .object({
    from: z.string(),
    to: z.string(),
    group_by: z.enum(['day', 'job', 'user']),
    rows: z.array(z.object({ key: z.string(), ...UsageFields })),
    totals: z.object(UsageFields),
  })
  .meta({ id: 'UsageAnswer' });

const quotaValue = (max: number) => z.number().finite().min(0).max(max).nullable().optional();
const Quota = z
  .object({
    user_id: z.string(),
    max_concurrent_sandboxes: z.number().int().nullable(),
    sandbox_hours_per_month: z.number().nullable(),
    storage_gb: z.number().nullable(),
    updated_at: z.string(),
  })
  .meta({ id: 'Quota' });
const QuotaAnswer = z
  .object({
    quota: Quota,
    used: z.object({ concurrent_sandboxes: z.number().int(), sandbox_hours_this_month: z.number(), storage_bytes: z.number() }),
  })
  .meta({ id: 'QuotaAnswer' });

/** A date or date-time; a bare date means midnight UTC. */
const when = z
  .string()
  .max(64)
  .refine((s) => /^\d{4}-\d{2}-\d{2}/.test(s) && !Number.isNaN(Date.parse(s)), { message: 'must be an ISO 8601 date or date-time, e.g. 2026-11-01' });

/** Ours: usage metering (per day, job or user) and per-user quotas. */
export const usageRoutes: FastifyPluginAsyncZod<{ usage: UsageMeter }> = async (app, { usage }) => {
  app.get(
    '/api/v1/usage',
    {
      schema: {
        tags: ['account'],
        summary: 'Usage (wall and vCPU seconds, memory, egress, storage) in a time range, grouped by day, job or user (ours)',
        description:
          'Defaults: the last 30 days, grouped by day. A user sees their own usage; an admin sees every user\'s, or one user\'s with user_id. A sandbox\'s use is recorded when it is given back and every 5 minutes while it runs.',
        querystring: z.object({
          from: when.optional(),
          to: when.optional(),
          group_by: z.enum(['day', 'job', 'user']).optional(),
          user_id: z.string().min(1).max(128).optional(),
        }),
        response: { 200: UsageAnswer, ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const to = q.to ? new Date(q.to) : new Date();
      const from = q.from ? new Date(q.from) : new Date(to.getTime() - 30 * DAY_MS);
      if (from.getTime() >= to.getTime()) throw new AppError('VALIDATION_ERROR', 'from: must be before to');
      if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * DAY_MS) {
        throw new AppError('VALIDATION_ERROR', `from: the range may cover at most ${MAX_RANGE_DAYS} days`, 'Query a year at a time.');
      }
      return usage.query(userOf(request), { from: from.toISOString(), to: to.toISOString(), groupBy: q.group_by ?? 'day', userId: q.user_id });
    },
  );

  app.get(
    '/api/v1/quota',
    { schema: { tags: ['account'], summary: "The caller's quotas and what is used of them (ours)", response: { 200: QuotaAnswer, ...errorResponses } } },
    async (request) => {
      const user = userOf(request);
      return { quota: await usage.quota(user.id), used: await usage.used(user.id) };
    },
  );

  app.get(
    '/api/v1/users/:id/quota',
    {
      schema: {
        tags: ['account'],
        summary: "A user's quotas and use (admin only, ours)",
        params: z.object({ id: z.string().min(1).max(128) }),
        response: { 200: QuotaAnswer, ...errorResponses },
      },
    },
    async (request) => {
      const actor = userOf(request);
      if (!actor.admin) throw new AppError('FORBIDDEN', "Only an admin may read another user's quota", 'GET /api/v1/quota shows your own.');
      await usage.requireUser(request.params.id);
      return { quota: await usage.quota(request.params.id), used: await usage.used(request.params.id) };
    },
  );

  app.put(
    '/api/v1/users/:id/quota',
    {
      schema: {
        tags: ['account'],
        summary: "Set a user's quotas; null or absent = no limit (admin only, ours)",
        params: z.object({ id: z.string().min(1).max(128) }),
        body: z
          .object({
            max_concurrent_sandboxes: z.number().int().min(0).max(100_000).nullable().optional(),
            sandbox_hours_per_month: quotaValue(1_000_000),
            storage_gb: quotaValue(1_000_000),
          })
          .strict(),
        response: { 200: Quota, ...errorResponses },
      },
    },
    async (request) => {
      const actor = userOf(request);
      if (actor.admin) await usage.requireUser(request.params.id);
      const b = request.body;
      return usage.setQuota(actor, request.params.id, {
        max_concurrent_sandboxes: b.max_concurrent_sandboxes ?? null,
        sandbox_hours_per_month: b.sandbox_hours_per_month ?? null,
        storage_gb: b.storage_gb ?? null,
      });
    },
  );
};
