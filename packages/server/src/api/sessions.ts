import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../services/errors.js';
import type { SessionsService, StartedSession } from '../services/sessions.js';
import { SESSION_COOKIE, isCrossSite, userOf } from './auth.js';
import { errorResponses } from './schemas.js';

const SessionUser = z.object({ id: z.string(), name: z.string(), admin: z.boolean() });
const SessionAnswer = z
  .object({ user: SessionUser, csrf_token: z.string().describe('Echo it in X-CSRF-Token on cookie-authenticated writes'), expires_at: z.string().optional() })
  .meta({ id: 'Session' });
const LoginBody = z
  .object({
    username: z.string().min(1).max(256).optional(),
    email: z.string().min(1).max(256).optional(),
    password: z.string().max(1024).optional(),
    token: z.string().min(1).max(256).optional(),
  })
  .describe('Either username (or email) and password, or an API token');
const UserIdParams = z.object({ id: z.string().min(1).max(128) });
const UserState = z.object({ id: z.string(), name: z.string(), admin: z.boolean(), disabled_at: z.string().nullable() });

/** Refuses a sign-in form posted from another site (login CSRF). */
function refuseCrossSite(request: FastifyRequest): void {
  if (isCrossSite(request)) throw new AppError('CSRF_REJECTED', 'Cross-site sign-in refused', 'Sign in on the dashboard itself.');
}

function setSessionCookie(request: FastifyRequest, reply: FastifyReply, s: StartedSession): void {
  const maxAge = Math.max(0, Math.floor((Date.parse(s.expires_at) - Date.now()) / 1000));
  const secure = request.protocol === 'https' ? '; Secure' : '';
  reply.header('set-cookie', `${SESSION_COOKIE}=${s.secret}; HttpOnly; SameSite=Lax; Path=/; Max-Age=${maxAge}${secure}`);
  reply.header('cache-control', 'no-store');
}

function presentSession(s: StartedSession) {
  return { user: { id: s.user.id, name: s.user.name, admin: s.user.admin }, csrf_token: s.csrf_token, expires_at: s.expires_at };
}

/** Sign-in and invite redemption: the only account routes reachable without credentials (ours). */
export const publicSessionRoutes: FastifyPluginAsyncZod<{ sessions: SessionsService }> = async (app, { sessions }) => {
  app.post(
    '/api/v1/auth/login',
    {
      schema: {
        tags: ['account'],
        summary: 'Sign in to the dashboard: sets the session cookie (ours)',
        security: [],
        body: LoginBody,
        response: { 200: SessionAnswer, ...errorResponses },
      },
    },
    async (request, reply) => {
      refuseCrossSite(request);
      const b = request.body;
      const identity = b.username ?? b.email;
      if (!b.token && (!identity || b.password === undefined)) {
        throw new AppError('VALIDATION_ERROR', 'Send username (or email) and password, or token', 'For example {"username":"admin","password":"..."}.');
      }
      const s = await sessions.login(b.token ? { token: b.token } : { identity, password: b.password }, request.ip);
      setSessionCookie(request, reply, s);
      return presentSession(s);
    },
  );

  app.post(
    '/api/v1/auth/accept-invite',
    {
      schema: {
        tags: ['account'],
        summary: 'Set a password with a one-time invite token and sign in (ours)',
        security: [],
        body: z.object({ token: z.string().min(1).max(256), password: z.string().max(1024) }),
        response: { 200: SessionAnswer, ...errorResponses },
      },
    },
    async (request, reply) => {
      refuseCrossSite(request);
      const s = await sessions.acceptInvite(request.body.token, request.body.password);
      setSessionCookie(request, reply, s);
      return presentSession(s);
    },
  );
};

/** The signed-in session, sign-out, password change and the admin's invite/disable (ours). */
export const sessionRoutes: FastifyPluginAsyncZod<{ sessions: SessionsService }> = async (app, { sessions }) => {
  app.get(
    '/api/v1/auth/session',
    { schema: { tags: ['account'], summary: 'The session of the cookie: the user and the CSRF token (ours)', response: { 200: SessionAnswer, ...errorResponses } } },
    async (request, reply) => {
      const u = userOf(request);
      const found = request.sessionSecret ? await sessions.authenticate(request.sessionSecret) : undefined;
      if (!found) throw new AppError('AUTH_REQUIRED', 'No dashboard session: this call needs the session cookie', 'Sign in with POST /api/v1/auth/login.');
      reply.header('cache-control', 'no-store');
      return { user: { id: u.id, name: u.name, admin: u.admin }, csrf_token: found.csrf_token };
    },
  );

  app.post(
    '/api/v1/auth/logout',
    { schema: { tags: ['account'], summary: 'Sign out: revokes the session and clears the cookie (ours)', response: { 200: z.object({ success: z.literal(true) }), ...errorResponses } } },
    async (request, reply) => {
      if (request.sessionSecret) await sessions.logout(request.sessionSecret);
      reply.header('set-cookie', `${SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0`);
      return { success: true as const };
    },
  );

  app.put(
    '/api/v1/me/password',
    {
      schema: {
        tags: ['account'],
        summary: 'Set or change your dashboard password (ours)',
        body: z.object({ current_password: z.string().max(1024).optional(), password: z.string().max(1024) }),
        response: { 200: z.object({ success: z.literal(true) }), ...errorResponses },
      },
    },
    async (request) => {
      await sessions.changePassword(userOf(request), request.body.current_password, request.body.password);
      return { success: true as const };
    },
  );

  app.post(
    '/api/v1/users/:id/invite',
    {
      schema: {
        tags: ['account'],
        summary: 'A one-time invite token that sets the user\'s password; the link is /invite/{token} (admin only, ours)',
        params: UserIdParams,
        response: { 201: z.object({ token: z.string(), url: z.string(), expires_at: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { token, expires_at } = await sessions.invite(userOf(request), request.params.id);
      return reply.code(201).send({ token, url: `${request.protocol}://${request.host}/invite/${token}`, expires_at });
    },
  );

  app.patch(
    '/api/v1/users/:id',
    {
      schema: {
        tags: ['account'],
        summary: 'Disable or enable a user (its tokens and sessions stop working at once), or set its email (admin only, ours)',
        params: UserIdParams,
        body: z.object({ disabled: z.boolean().optional(), email: z.string().email().max(256).nullable().optional() }),
        response: { 200: UserState, ...errorResponses },
      },
    },
    async (request) => {
      const u = await sessions.updateUser(userOf(request), request.params.id, request.body);
      return { id: u.id, name: u.name, admin: u.admin, disabled_at: u.disabled_at ?? null };
    },
  );
};
