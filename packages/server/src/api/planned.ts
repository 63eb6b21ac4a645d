import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../services/errors.js';
import type { JobsService } from '../services/jobs.js';
import { userOf } from './auth.js';
import { IdParams, errorResponses } from './schemas.js';

/**
 * Endpoints Mags clients call whose features come with later parts of the server (exec). They
 * answer 501 FEATURE_NOT_AVAILABLE with a clear message instead of a bare 404, after the usual auth
 * and (for job paths) ownership checks.
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

  app.post('/api/v1/mags-jobs/:id/exec', { schema: { ...schema('Run a command in a running or sleeping sandbox'), params: IdParams } }, async (request) => {
    await jobs.get(userOf(request), request.params.id);
    return unavailable('exec', 'Submit the command as a new job for now.');
  });
  // A control plane composed without the URL service (no proxy) keeps the alias paths at 501.
  if (!aliases) return;
  const noAliases = async () => unavailable('URL aliases', 'This server runs without the public-URL proxy.');
  app.get('/api/v2/mags-url-aliases', { schema: schema('List URL aliases') }, noAliases);
  app.post('/api/v2/mags-url-aliases', { schema: schema('Create a URL alias') }, noAliases);
  app.delete('/api/v2/mags-url-aliases/:subdomain', { schema: schema('Delete a URL alias', { params: z.object({ subdomain: z.string() }) }) }, noAliases);
};
