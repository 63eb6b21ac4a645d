import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { UsersService } from '../services/users.js';
import { userOf } from './auth.js';
import { errorResponses } from './schemas.js';

const safeName = z
  .string()
  .min(1)
  .max(128)
  .refine((s) => !/[\u0000-\u001f]/.test(s), { message: 'must not contain control characters' });

const MeAnswer = z.object({ id: z.string(), name: z.string(), admin: z.boolean(), created_at: z.string() }).meta({ id: 'Me' });
const TokenInfo = z.object({ id: z.string(), name: z.string(), created_at: z.string(), last_used_at: z.string().nullable() }).meta({ id: 'TokenInfo' });
const CreatedToken = z.object({ id: z.string(), name: z.string(), token: z.string(), created_at: z.string() }).meta({ id: 'CreatedToken' });
const UserInfo = z
  .object({ id: z.string(), name: z.string(), admin: z.boolean(), created_at: z.string(), email: z.string().nullable().optional(), disabled_at: z.string().nullable().optional().describe('When an admin disabled the user (ours)') })
  .meta({ id: 'User' });

/** Ours: whoami, API tokens (create/list/revoke) and admin-only users. */
export const accountRoutes: FastifyPluginAsyncZod<{ users: UsersService }> = async (app, { users }) => {
  app.get('/api/v1/me', { schema: { tags: ['account'], summary: 'The caller (ours)', response: { 200: MeAnswer, ...errorResponses } } }, async (request) => {
    const u = userOf(request);
    return { id: u.id, name: u.name, admin: u.admin, created_at: u.created_at };
  });

  app.post(
    '/api/v1/tokens',
    {
      schema: {
        tags: ['account'],
        summary: 'Create an API token; the token is shown only in this answer (ours)',
        body: z.object({ name: safeName.optional() }).optional(),
        response: { 201: CreatedToken, ...errorResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await users.createToken(userOf(request), request.body?.name)),
  );

  app.get(
    '/api/v1/tokens',
    { schema: { tags: ['account'], summary: "The caller's tokens (ours)", response: { 200: z.object({ tokens: z.array(TokenInfo) }), ...errorResponses } } },
    async (request) => ({
      tokens: (await users.listTokens(userOf(request))).map((t) => ({ id: t.id, name: t.name, created_at: t.created_at, last_used_at: t.last_used_at })),
    }),
  );

  app.delete(
    '/api/v1/tokens/:id',
    {
      schema: {
        tags: ['account'],
        summary: 'Revoke a token (ours)',
        params: z.object({ id: z.string().min(1) }),
        response: { 200: z.object({ success: z.literal(true) }), ...errorResponses },
      },
    },
    async (request) => {
      await users.revokeToken(userOf(request), request.params.id);
      return { success: true as const };
    },
  );

  app.post(
    '/api/v1/users',
    {
      schema: {
        tags: ['account'],
        summary: 'Create a user and its first token (admin only, ours)',
        body: z.object({ name: safeName, admin: z.boolean().optional() }),
        response: { 201: UserInfo.omit({ created_at: true }).extend({ token: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { user, token } = await users.createUser(userOf(request), request.body.name, request.body.admin ?? false);
      return reply.code(201).send({ id: user.id, name: user.name, admin: user.admin, token });
    },
  );

  app.get(
    '/api/v1/users',
    { schema: { tags: ['account'], summary: 'All users (admin only, ours)', response: { 200: z.object({ users: z.array(UserInfo) }), ...errorResponses } } },
    async (request) => ({ users: await users.listUsers(userOf(request)) }),
  );
};
