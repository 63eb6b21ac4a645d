import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { UsersService } from '../services/users.js';
import type { User } from '../services/types.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; set by the auth hook on every /api route. */
    user: User | null;
  }
}

/** Authenticates every request of this scope with `Authorization: Bearer <token>`. */
export function installAuth(scope: FastifyInstance, users: UsersService): void {
  scope.addHook('onRequest', async (request) => {
    request.user = await users.authenticate(request.headers.authorization);
  });
}

/** The caller of an authenticated route. */
export function userOf(request: FastifyRequest): User {
  if (!request.user) throw new Error('route used outside the authenticated scope');
  return request.user;
}
