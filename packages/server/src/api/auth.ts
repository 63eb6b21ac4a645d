import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../services/errors.js';
import type { SessionsService } from '../services/sessions.js';
import type { UsersService } from '../services/users.js';
import type { User } from '../services/types.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; set by the auth hook on every /api route. */
    user: User | null;
    /** The session cookie value when the caller was authenticated by it (not by a Bearer token). */
    sessionSecret: string | null;
  }
}

/** Name of the dashboard's session cookie. */
export const SESSION_COOKIE = 'mags_session';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Authenticates every request of this scope with `Authorization: Bearer <token>` or, without that
 * header, the dashboard's session cookie. Cookie-authenticated writes must come from this site
 * (`Sec-Fetch-Site`, `Origin`) and echo the session's CSRF token in `X-CSRF-Token`.
 */
export function installAuth(scope: FastifyInstance, users: UsersService, sessions?: SessionsService): void {
  scope.addHook('onRequest', async (request) => {
    request.sessionSecret = null;
    const secret = sessions && !request.headers.authorization ? readCookie(request.headers.cookie, SESSION_COOKIE) : undefined;
    if (!secret || !sessions) {
      request.user = await users.authenticate(request.headers.authorization);
      return;
    }
    const found = await sessions.authenticate(secret);
    if (!found) throw new AppError('AUTH_REQUIRED', 'Your session has ended: sign in again', 'Open the dashboard and sign in, or send "Authorization: Bearer <token>".');
    if (!SAFE_METHODS.has(request.method)) {
      if (isCrossSite(request)) throw new AppError('CSRF_REJECTED', 'Cross-site request refused', 'Send writes from the dashboard itself, or use "Authorization: Bearer <token>".');
      if (request.headers['x-csrf-token'] !== found.csrf_token) {
        throw new AppError('CSRF_REJECTED', 'The X-CSRF-Token header is missing or wrong', 'Reload the dashboard; programs should use "Authorization: Bearer <token>".');
      }
    }
    request.user = found.user;
    request.sessionSecret = secret;
  });
}

/** The caller of an authenticated route. */
export function userOf(request: FastifyRequest): User {
  if (!request.user) throw new Error('route used outside the authenticated scope');
  return request.user;
}

/** True when the browser says the request comes from another site, or its Origin is not this host. */
export function isCrossSite(request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  try {
    // Both sides through URL, so a default port (`:80`, `:443`) compares equal to none.
    return new URL(origin).host !== new URL(`${request.protocol}://${request.host}`).host;
  } catch (err) {
    request.log.debug({ err, origin: origin.slice(0, 200) }, 'unparsable Origin header');
    return true;
  }
}

/** One cookie's value from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
