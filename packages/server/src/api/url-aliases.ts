import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { UrlService } from '../services/urls.js';
import { userOf } from './auth.js';
import { errorResponses } from './schemas.js';

const UrlAliasSchema = z
  .object({
    subdomain: z.string().describe('The alias label: <subdomain>.apps.<domain>'),
    workspace_id: z.string().describe('Workspace whose newest running/sleeping persistent job the alias reaches'),
    domain: z.string().describe('apps.<MAGS_DOMAIN>'),
    port: z.number().int().describe('Port inside the sandbox'),
    auth: z.enum(['public', 'token']).describe('public (anyone) or token (the owner only; ours)'),
    url: z.string().describe('The public URL'),
    created_at: z.string(),
  })
  .meta({ id: 'UrlAlias' });

const UrlAliasList = z.object({ aliases: z.array(UrlAliasSchema) }).meta({ id: 'UrlAliasList' });

const CreateAliasBody = z.object({
  subdomain: z.string().min(1).max(63).describe('A DNS label: lowercase letters, digits, inner hyphens'),
  workspace_id: z.string().min(1).max(256),
  domain: z.string().max(253).nullish().describe('Optional; must be this server\'s apps domain'),
  port: z.number().int().min(1).max(65535).nullish().describe('Port inside the sandbox, default 8080'),
  auth: z.enum(['public', 'token']).nullish().describe('URL auth (ours), default public'),
});

/** URL aliases (Mags v2 paths): `<subdomain>.apps.<domain>` that follows a workspace's job. */
export const urlAliasRoutes: FastifyPluginAsyncZod<{ urls: UrlService }> = async (app, { urls }) => {
  app.post(
    '/api/v2/mags-url-aliases',
    { schema: { tags: ['urls'], summary: 'Create a URL alias for a workspace', body: CreateAliasBody, response: { 200: UrlAliasSchema.extend({ success: z.literal(true) }), ...errorResponses } } },
    async (request) => {
      const b = request.body;
      const alias = await urls.createAlias(userOf(request), { subdomain: b.subdomain, workspace_id: b.workspace_id, domain: b.domain ?? undefined, port: b.port ?? undefined, auth: b.auth ?? undefined });
      return { success: true as const, ...alias };
    },
  );
  app.get(
    '/api/v2/mags-url-aliases',
    { schema: { tags: ['urls'], summary: 'List your URL aliases', response: { 200: UrlAliasList, ...errorResponses } } },
    async (request) => ({ aliases: await urls.listAliases(userOf(request)) }),
  );
  app.delete(
    '/api/v2/mags-url-aliases/:subdomain',
    {
      schema: {
        tags: ['urls'],
        summary: 'Delete a URL alias',
        params: z.object({ subdomain: z.string().max(256) }),
        response: { 200: z.object({ success: z.literal(true) }), ...errorResponses },
      },
    },
    async (request) => {
      await urls.deleteAlias(userOf(request), request.params.subdomain);
      return { success: true as const };
    },
  );
};
