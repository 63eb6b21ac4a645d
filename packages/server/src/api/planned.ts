import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../services/errors.js';
import type { JobsService } from '../services/jobs.js';
import { userOf } from './auth.js';
import { IdParams, errorResponses } from './schemas.js';

/**
 * Endpoints Mags clients call whose features this server may run without (URL aliases need the
 * public-URL proxy). They answer 501 FEATURE_NOT_AVAILABLE with a clear message instead of a bare
 * 404, after the usual auth.
 */
export const plannedRoutes: FastifyPluginAsyncZod<{ jobs: JobsService; aliases?: boolean }> = async (app, { jobs, aliases }) => {
  const unavailable = (what: string, hint: string): never => {
    throw new AppError('FEATURE_NOT_AVAILABLE', `${what} is not available on this server yet`, hint);
  };
  const schema = (summary: string, extra: Record<string, unknown> = {}) => ({
    tags: ['planned'],
    summary: `${summary} (not available yet: 501)`,
    response: { ...errorResponses },
    ...extra,
  });

  // A control plane composed without the URL service (no proxy) keeps the alias paths at 501.
  if (!aliases) return;
  const noAliases = async () => unavailable('URL aliases', 'This server runs without the public-URL proxy.');
  app.get('/api/v2/mags-url-aliases', { schema: schema('List URL aliases') }, noAliases);
  app.post('/api/v2/mags-url-aliases', { schema: schema('Create a URL alias') }, noAliases);
  app.delete('/api/v2/mags-url-aliases/:subdomain', { schema: schema('Delete a URL alias', { params: z.object({ subdomain: z.string() }) }) }, noAliases);
};
