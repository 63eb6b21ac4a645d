import { randomUUID, timingSafeEqual } from 'node:crypto';
import fastifySwagger from '@fastify/swagger';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { z } from 'zod';
import { accountRoutes } from './api/account.js';
import { execRoutes } from './api/exec.js';
import { terminalRoutes } from './api/terminal.js';
import { installAuth } from './api/auth.js';
import { DEFAULT_DOWNLOADS_DIR, downloadRoutes } from './api/downloads.js';
import { answerClientError, answerFrameworkError, installErrorHandlers, sendError } from './api/errors.js';
import { fileRoutes } from './api/files.js';
import { jobRoutes } from './api/jobs.js';
import { logRoutes } from './api/logs.js';
import { plannedRoutes } from './api/planned.js';
import { publicSessionRoutes, sessionRoutes } from './api/sessions.js';
import { webFallback, webRoutes } from './api/web.js';
import { usageRoutes } from './api/usage.js';
import { sandboxFileRoutes } from './api/sandbox-files.js';
import { urlAliasRoutes } from './api/url-aliases.js';
import { workspaceRoutes } from './api/workspaces.js';
import { cronRoutes } from './api/cron.js';
import { webhookRoutes } from './api/webhooks.js';
import type { CronService } from './cron/service.js';
import type { WebhooksService } from './webhooks/service.js';
import { AppError } from './services/errors.js';
import { validatorCompiler } from './api/validation.js';
import type { PoolStatus } from './services/types.js';
import type { ExecService } from './services/exec.js';
import type { JobsService } from './services/jobs.js';
import type { TerminalTickets } from './services/terminal.js';
import type { SandboxFilesService } from './services/sandbox-files.js';
import type { SessionsService } from './services/sessions.js';
import type { UploadsService } from './services/uploads.js';
import type { UrlService } from './services/urls.js';
import type { UsersService } from './services/users.js';
import type { WorkspaceService } from './workspaces/service.js';
import type { Metrics } from './services/metrics.js';
import type { UsageMeter } from './services/usage.js';

/** Job paths (`/api/v1/mags-jobs/:id...`) that every route plugin gets under `/api/v2` as well. */
export const V1_JOB_PATH = '/api/v1/mags-jobs/:id';

/**
 * Registers every job path of /api/v1 (`/api/v1/mags-jobs/:id` and below) under /api/v2 too, with
 * the same schema and handler: Mags clients call `GET /api/v2/mags-jobs/{name}/status` and
 * `POST /api/v2/mags-jobs/{name}/access`. Route plugins registered inside this context (after the
 * call) declare only the v1 path.
 */
function mirrorJobPathsToV2(api: FastifyInstance): void {
  api.addHook('onRoute', function (route) {
    if (route.url !== V1_JOB_PATH && !route.url.startsWith(V1_JOB_PATH + '/')) return;
    // The HEAD twin of a GET is made by Fastify for the v2 GET as well.
    if (route.method === 'HEAD') return;
    // Registered on the plugin the route came from (its hooks apply), whose prefix route() adds again.
    const full = '/api/v2' + route.url.slice('/api/v1'.length);
    const url = route.prefix && full.startsWith(route.prefix) ? full.slice(route.prefix.length) : full;
    const { path: _path, routePath: _routePath, prefix: _prefix, ...rest } = route as typeof route & { routePath?: string; path?: string };
    this.route({ ...rest, url } as typeof route);
  });
}

/** The server's version, reported by /health and the OpenAPI document. */
export const SERVER_VERSION = '0.1.0';

export interface AppDeps {
  users: UsersService;
  jobs: JobsService;
  workspaces: WorkspaceService;
  uploads: UploadsService;
  cron: CronService;
  webhooks: WebhooksService;
  /** Files of persistent jobs' sandboxes. */
  sandboxFiles: SandboxFilesService;
  /** Public URLs; absent: the URL alias endpoints answer 501. */
  urls?: UrlService;
  poolStatus: () => PoolStatus;
  /** Commands, terminals and tickets in persistent sandboxes (exec API, web terminal). */
  exec: ExecService;
  tickets: TerminalTickets;
  /** Dashboard sign-in and sessions (absent: Bearer tokens only). */
  sessions?: SessionsService;
  /** The built dashboard served at `/` (absent or not built: `/` says how to build it). */
  webDir?: string;
  /** Believe X-Forwarded-* headers from a reverse proxy (protocol, client address, host). */
  trustProxy?: boolean;
  log: Logger;
  /** Largest accepted body (default 2 MiB). */
  bodyLimitBytes?: number;
  /** Seconds between SSE keep-alive comments (default 15). */
  sseHeartbeatSeconds?: number;
  /** Longest an SSE follower's socket may accept nothing before the stream is cut off (ms, default 60000). */
  sseStallMs?: number;
  /** Usage metering and quotas (absent: /api/v1/usage is not served). */
  usage?: UsageMeter;
  /** Prometheus metrics at /metrics (absent: not served). */
  metrics?: Metrics;
  /** A bearer token that may read /metrics besides admin API tokens (MAGS_METRICS_TOKEN). */
  metricsToken?: string;
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
    trustProxy: deps.trustProxy ?? false,
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
  installErrorHandlers(app, (request, reply) => webFallback(deps.webDir, request, reply));

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
    deps.metrics?.apiRequest(request.method, reply.statusCode);
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
        { name: 'cron', description: 'Cron schedules that submit jobs (ours)' },
        { name: 'webhooks', description: 'Signed webhooks when jobs end and workspaces sync (ours)' },
        { name: 'sandbox-files', description: "Files of a persistent job's sandbox: read, write, list, remove, mkdir, move, watch (ours)" },
        { name: 'urls', description: 'Public URLs: aliases that follow a workspace (ours: URL auth)' },
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
  if (deps.metrics) {
    const metrics = deps.metrics;
    app.get(
      '/metrics',
      { schema: { tags: ['system'], summary: 'Prometheus metrics (admin token or MAGS_METRICS_TOKEN; ours)', produces: ['text/plain'] } },
      async (request, reply) => {
        await authorizeMetrics(request.headers.authorization, deps.users, deps.metricsToken);
        const { contentType, body } = await metrics.render();
        return reply.type(contentType).send(body);
      },
    );
  }
  await app.register(downloadRoutes, { dir: deps.downloadsDir ?? DEFAULT_DOWNLOADS_DIR });

  // The web terminal authenticates on its own (a header or a single-use ticket: browsers cannot
  // set headers on a WebSocket).
  await app.register(fastifyWebsocket, { options: { maxPayload: 1024 * 1024 } });
  await app.register(async (scope) => terminalRoutes(scope, { exec: deps.exec, tickets: deps.tickets, users: deps.users }));

  const sessions = deps.sessions;
  if (sessions) await app.register(publicSessionRoutes, { sessions });
  await app.register(async (api) => {
    installAuth(api, deps.users, sessions);
    mirrorJobPathsToV2(api);
    if (sessions) await api.register(sessionRoutes, { sessions });
    const urls = deps.urls;
    await api.register(jobRoutes, { jobs: deps.jobs, poolStatus: deps.poolStatus, urlOf: urls ? (label) => urls.urlOf(label) : undefined });
    await api.register(logRoutes, { jobs: deps.jobs, heartbeatSeconds: deps.sseHeartbeatSeconds, stallMs: deps.sseStallMs });
    await api.register(accountRoutes, { users: deps.users });
    await api.register(workspaceRoutes, { workspaces: deps.workspaces });
    await api.register(fileRoutes, { uploads: deps.uploads });
    await api.register(execRoutes, { exec: deps.exec, tickets: deps.tickets });
    await api.register(sandboxFileRoutes, { files: deps.sandboxFiles, heartbeatSeconds: deps.sseHeartbeatSeconds, stallMs: deps.sseStallMs });
    await api.register(plannedRoutes, { jobs: deps.jobs, aliases: !deps.urls });
    if (deps.urls) await api.register(urlAliasRoutes, { urls: deps.urls });
    if (deps.usage) await api.register(usageRoutes, { usage: deps.usage });
    await api.register(cronRoutes, { cron: deps.cron });
    await api.register(webhookRoutes, { webhooks: deps.webhooks });
  });
  await webRoutes(app, deps.webDir);
  await app.ready();
  return app;
}

/** /metrics is for the operator: an admin API token, or the dedicated scrape token when one is set. */
async function authorizeMetrics(authorization: string | undefined, users: UsersService, scrapeToken: string | undefined): Promise<void> {
  const sent = /^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1]?.trim();
  if (scrapeToken && sent && sent.length === scrapeToken.length && timingSafeEqual(Buffer.from(sent), Buffer.from(scrapeToken))) return;
  const user = await users.authenticate(authorization);
  if (!user.admin) throw new AppError('FORBIDDEN', 'Only an admin token (or MAGS_METRICS_TOKEN) may read /metrics');
}
