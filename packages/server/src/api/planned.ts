import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../services/errors.js';
import type { JobsService } from '../services/jobs.js';
import { userOf } from './auth.js';
import { IdParams, errorResponses } from './schemas.js';

/**
 * Endpoints Mags clients call whose features come with later parts of the server (URL
 * aliases). They answer 501 FEATURE_NOT_AVAILABLE with a clear message
 * instead of a bare 404, after the usual auth and (for job paths) ownership checks.
 */
export const plannedRoutes: FastifyPluginAsyncZod<{ jobs: JobsService }> = async (app, { jobs }) => {
  const unavailable = (what: string, hint: string): never => {
    throw new AppError('FEATURE_NOT_AVAILABLE', `${what} is not available on this server yet`, hint);
  };
  const schema = (summary: string, extra: Record<string, unknown> = {}) => ({
    tags: ['planned'],
    summary: `${summary} (not available yet: 501)`,
    response: { ...errorResponses },
    ...extra,
  });

  app.get('/api/v2/mags-url-aliases', { schema: schema('List URL aliases') }, async () =>
    unavailable('URL aliases', 'Public URLs come with the proxy in a later version of the server.'),
  );
  app.post('/api/v2/mags-url-aliases', { schema: schema('Create a URL alias') }, async () =>
    unavailable('URL aliases', 'Public URLs come with the proxy in a later version of the server.'),
  );
  app.delete('/api/v2/mags-url-aliases/:subdomain', { schema: schema('Delete a URL alias', { params: z.object({ subdomain: z.string() }) }) }, async () =>
    unavailable('URL aliases', 'Public URLs come with the proxy in a later version of the server.'),
  );
};
