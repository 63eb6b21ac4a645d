import { randomUUID } from 'node:crypto';
import fastifySwagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { z } from 'zod';
import { accountRoutes } from './api/account.js';
import { installAuth } from './api/auth.js';
import { DEFAULT_DOWNLOADS_DIR, downloadRoutes } from './api/downloads.js';
import { answerClientError, answerFrameworkError, installErrorHandlers, sendError } from './api/errors.js';
import { fileRoutes } from './api/files.js';
import { jobRoutes } from './api/jobs.js';
import { logRoutes } from './api/logs.js';
import { plannedRoutes } from './api/planned.js';
import { workspaceRoutes } from './api/workspaces.js';
import { AppError } from './services/errors.js';
import { validatorCompiler } from './api/validation.js';
import type { PoolStatus } from './services/types.js';
import type { JobsService } from './services/jobs.js';
import type { UploadsService } from './services/uploads.js';
import type { UsersService } from './services/users.js';
import type { WorkspaceService } from './workspaces/service.js';

/** The server's version, reported by /health and the OpenAPI document. */
export const SERVER_VERSION = '0.1.0';

export interface AppDeps {
  users: UsersService;
  jobs: JobsService;
  workspaces: WorkspaceService;
  uploads: UploadsService;
  poolStatus: () => PoolStatus;
  log: Logger;
  /** Largest accepted body (default 2 MiB). */
  bodyLimitBytes?: number;
  /** Seconds between SSE keep-alive comments (default 15). */
  sseHeartbeatSeconds?: number;
  /** Longest an SSE follower's socket may accept nothing before the stream is cut off (ms, default 60000). */
  sseStallMs?: number;
  /** Directory of the client packages served at /downloads/ (default packages/server/dist/downloads). */
  downloadsDir?: string;
}

/**
 * Builds the HTTP app (Fastify + zod + OpenAPI) without listening: main.ts listens, tests use
 * `app.inject()`, spec.ts reads `app.swagger()`.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const bodyLimit = deps.bodyLimitBytes ?? 2 * 1024 * 1024;
  const app = Fastify({
    loggerInstance: deps.log as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    // Names and workspace ids in paths may be long; longer ones simply match nothing.
    routerOptions: { maxParamLength: 16 * 1024, ignoreTrailingSlash: true },
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    forceCloseConnections: true,
    // Slow senders: headers must arrive within Node's headersTimeout (60 s; answered 408
    // REQUEST_TIMEOUT), and a connection on which nothing moves for 120 s is closed. No limit on a
    // whole request: a job's stdin upload lasts as long as its session. Streams that may sit idle
    // longer (stdin uploads, raw output follows) lift the idle limit of their own socket.
    requestTimeout: 0,
    connectionTimeout: 120_000,
    return503OnClosing: false,
    frameworkErrors: (err, request, reply) => answerFrameworkError(err, request as FastifyRequest, reply as FastifyReply),
    clientErrorHandler: (err, socket) => answerClientError(err as Error & { code?: string }, socket, deps.log),
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app);

  // JSON only. An empty body counts as no body (clients POST /stop without one); "__proto__"
  // keys are dropped.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (_req, body, done) => {
    const s = body as string;
    if (s.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(s, (k, v: unknown) => (k === '__proto__' ? undefined : v)));
    } catch (err) {
      done(new AppError('INVALID_JSON', `The request body is not valid JSON: ${(err as Error).message}`), undefined);
    }
  });

  // While closing, requests on kept-alive connections get the registry's 503 rather than Fastify's.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (closing) return sendError(reply, 'SERVICE_UNAVAILABLE', 'The server is shutting down; retry in a few seconds');
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.debug({ method: request.method, url: request.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Mags server API',
        description: 'Self-hosted Mags: the Mags jobs API plus our additions (marked "ours"). Errors are {"error","code","hint"?}; see docs/errors.md.',
        version: SERVER_VERSION,
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'mags_ API token' } } },
      security: [{ bearer: [] }],
      tags: [
        { name: 'jobs', description: 'The Mags jobs API' },
        { name: 'workspaces', description: 'Persistent workspaces: list, delete, sync' },
        { name: 'files', description: 'Uploaded files that jobs get in /root (file_ids)' },
        { name: 'account', description: 'Whoami, tokens, users (ours)' },
        { name: 'system', description: 'Health and the API description (ours)' },
        { name: 'planned', description: 'Calls of Mags clients whose features come later; they answer 501 FEATURE_NOT_AVAILABLE' },
      ],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });

  app.get(
    '/health',
    {
      schema: {
        tags: ['system'],
        summary: 'Liveness (no auth, ours)',
        security: [],
        response: { 200: z.object({ status: z.literal('ok'), version: z.string() }) },
      },
    },
    async () => ({ status: 'ok' as const, version: SERVER_VERSION }),
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(downloadRoutes, { dir: deps.downloadsDir ?? DEFAULT_DOWNLOADS_DIR });

  await app.register(async (api) => {
    installAuth(api, deps.users);
    await api.register(jobRoutes, { jobs: deps.jobs, poolStatus: deps.poolStatus });
    await api.register(logRoutes, { jobs: deps.jobs, heartbeatSeconds: deps.sseHeartbeatSeconds, stallMs: deps.sseStallMs });
    await api.register(accountRoutes, { users: deps.users });
    await api.register(workspaceRoutes, { workspaces: deps.workspaces });
    await api.register(fileRoutes, { uploads: deps.uploads });
    await api.register(plannedRoutes, { jobs: deps.jobs });
  });
  await app.ready();
  return app;
}
