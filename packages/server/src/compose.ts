/**
 * The one composition root of the control plane: given stores, a sandbox pool and settings, it builds
 * the services, the scheduler and the HTTP app the same way for the daemon (main.ts), the test
 * harness and the OpenAPI generator (spec.ts). Only the concrete drivers passed in differ.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './app.js';
import type { SandboxPool } from './runtime/driver.js';
import { Scheduler } from './scheduler/scheduler.js';
import type { Admission } from './services/admission.js';
import { ExecService } from './services/exec.js';
import { JobLogs } from './services/job-logs.js';
import { TerminalTickets } from './services/terminal.js';
import { cronRunsSweep, deliveriesSweep, logSweep, Retention } from './services/retention.js';
import { DEFAULT_MAX_PENDING_JOBS_PER_USER, JobsService } from './services/jobs.js';
import { StdinHub } from './services/stdin.js';
import { DEFAULT_MAX_UPLOAD_BYTES, UploadsService } from './services/uploads.js';
import { DEFAULT_FILES_MAX_BYTES, SandboxFilesService } from './services/sandbox-files.js';
import { SessionsService } from './services/sessions.js';
import type { UrlService } from './services/urls.js';
import { UsersService } from './services/users.js';
import type { BlobStore } from './storage/blobs/blob-store.js';
import type { Stores } from './storage/stores.js';
import { WorkspaceService, type WorkspaceServiceOptions } from './workspaces/service.js';
import { Metrics } from './services/metrics.js';
import { UsageMeter } from './services/usage.js';
import type { AccessGrant } from './sandboxes/live.js';
import { LiveManager } from './sandboxes/manager.js';
import type { Clock } from './clock.js';
import { CronService } from './cron/service.js';
import { JobEvents, type ChangeSet } from './services/job-events.js';
import { WebhookDispatcher, type DispatcherOptions } from './webhooks/dispatcher.js';
import { WebhooksService } from './webhooks/service.js';
import type { WorkspaceSyncer } from './workspaces/types.js';

/** Settings of the control plane, with the units in their names (config.ts reads them from env). */
export interface ControlPlaneSettings {
  jobTimeoutSeconds: number;
  maxOutputBytes: number;
  maxConcurrentJobs: number;
  /** Sandboxes one user may run at once (default: no cap beyond maxConcurrentJobs). */
  maxRunningJobsPerUser?: number;
  maxPendingJobsPerUser?: number;
  bodyLimitBytes?: number;
  /** Largest uploaded file in bytes (default 100 MiB). */
  maxUploadBytes?: number;
  sseHeartbeatSeconds?: number;
  /** How long a log follower may read nothing before its stream ends with a resumable position. */
  sseStallMs?: number;
  /** Days a finished job's output is kept (default 0: forever). */
  logRetentionDays?: number;
  /** Most bytes one files API read or write moves (default 1 GiB). */
  filesMaxBytes?: number;
  /** Days a schedule's firings are kept (default 30; 0: forever). */
  cronRetentionDays?: number;
  /** Days finished webhook deliveries are kept (default 30; 0: forever). */
  webhookRetentionDays?: number;
  /** Time between retention sweeps of output, firings and deliveries (default one hour). */
  logRetentionIntervalMs?: number;
  /** Lifetime of a dashboard session (default 7 days). */
  sessionTtlHours?: number;
  /** The built dashboard served at `/`. */
  webDir?: string;
  /** Believe X-Forwarded-* headers from a reverse proxy. */
  trustProxy?: boolean;
  /** How often a running sandbox's usage is recorded (default 300 s). */
  usageCheckpointSeconds?: number;
  /** Bearer token that may read /metrics besides admin tokens (MAGS_METRICS_TOKEN). */
  metricsToken?: string;
  /** Idle time before a persistent job's sandbox is frozen (default 60; 0 = never; fractions allowed). */
  freezeAfterSeconds?: number;
  /** Idle time before a persistent job's sandbox is synced and stopped, status `sleeping` (default 600; 0 = never). */
  sleepAfterSeconds?: number;
  /** CPU use (percent of one core) above which a persistent sandbox counts as busy (default 5). */
  idleCpuPercent?: number;
  /** Network traffic (bytes per second, sent plus received) above which a persistent sandbox counts as busy (default 1024; 0 = never). */
  idleNetBytesPerSecond?: number;
  /** Longest a wake may take before the waiting call gets SANDBOX_START_TIMEOUT (default 60). */
  wakeTimeoutSeconds?: number;
  /** Webhooks may reach loopback and private addresses (MAGS_WEBHOOK_ALLOW_PRIVATE). */
  webhookAllowPrivate?: boolean;
  /** Base URL of the API in webhook payloads' logs_url (read when an event is built). */
  publicUrl?: () => string;
  /** Retry timing of webhook deliveries (tests shorten it). */
  webhookRetry?: Pick<DispatcherOptions, 'timeoutMs' | 'retryBaseMs' | 'retryMaxMs' | 'retryWindowMs' | 'disableAfterFailures'>;
  /** Time source of the cron engine and the webhook dispatcher (tests and benchmarks). */
  clock?: Clock;
  /** Accept 6-field cron expressions with seconds (tests and benchmarks only). */
  cronAllowSeconds?: boolean;
  /** A firing found later than this is a missed one (default 60 s; tests shorten it). */
  cronMissedAfterMs?: number;
}

/** Defaults of the persistent-sandbox lifecycle (docs/sandboxes.md). */
export const DEFAULT_FREEZE_AFTER_SECONDS = 60;
export const DEFAULT_SLEEP_AFTER_SECONDS = 600;
export const DEFAULT_IDLE_CPU_PERCENT = 5;
export const DEFAULT_IDLE_NET_BYTES_PER_SECOND = 1024;
/** Days schedule firings and finished webhook deliveries are kept by default. */
export const DEFAULT_RECORD_RETENTION_DAYS = 30;

export interface ComposeOptions {
  stores: Stores;
  pool: SandboxPool;
  log: Logger;
  settings: ControlPlaneSettings;
  /** Admission control of submissions and of what runs at once (absent: none). */
  admission?: Admission;
  /** Where workspace layers live, the sync engine, image facts (the service is built here). */
  workspaces: Omit<WorkspaceServiceOptions, 'store' | 'jobs' | 'log'>;
  /** Where uploaded files (and the sync engine's workspace versions) are kept; absent: uploads answer 501. */
  blobs?: BlobStore;
  /** The daemon's metrics (made here when absent; main.ts makes it first to hand it to the sync engine). */
  metrics?: Metrics;
  /** The grants of `POST .../access`: port 22 to `ssh`, other ports to `url` (absent: 501). */
  access?: { url?: AccessGrant; ssh?: AccessGrant };
  /** Public URLs (aliases); absent: the alias endpoints answer 501. */
  urls?: UrlService;
}

/** The wired control plane. `start()` reconciles and starts the queue; `close()` undoes everything but the stores and pool. */
export interface ControlPlane {
  users: UsersService;
  sessions: SessionsService;
  jobs: JobsService;
  logs: JobLogs;
  scheduler: Scheduler;
  workspaces: WorkspaceService;
  uploads: UploadsService;
  usage: UsageMeter;
  metrics: Metrics;
  exec: ExecService;
  /** Persistent jobs' sandboxes: attach (wakes), touch, state, onChange. */
  live: LiveManager;
  cron: CronService;
  webhooks: WebhooksService;
  dispatcher: WebhookDispatcher;
  app: FastifyInstance;
  /** Reconciles jobs a previous process left behind and starts running queued jobs. */
  start(): Promise<void>;
  /** Ends running jobs (their outcome stored), closes followers and the app, flushes output. */
  close(): Promise<void>;
}

/** Builds services, scheduler and app on the given stores and pool. Nothing runs until `start()`. */
export async function composeControlPlane(o: ComposeOptions): Promise<ControlPlane> {
  const { stores, pool, log, settings } = o;
  const logs = new JobLogs(stores.logs, log.child({ component: 'logs' }));
  const retention = new Retention(
    log.child({ component: 'retention' }),
    [
      logSweep(stores.logs, settings.logRetentionDays ?? 0),
      cronRunsSweep(stores.cron, settings.cronRetentionDays ?? DEFAULT_RECORD_RETENTION_DAYS),
      deliveriesSweep(stores.webhooks, settings.webhookRetentionDays ?? DEFAULT_RECORD_RETENTION_DAYS),
    ],
    { intervalMs: settings.logRetentionIntervalMs },
  );
  const events = new JobEvents(log.child({ component: 'events' }));
  const syncer = o.workspaces.syncer && announcingSyncer(o.workspaces.syncer, events);
  const workspaces = new WorkspaceService({ admission: o.admission, ...o.workspaces, syncer, store: stores.workspaces, jobs: stores.jobs, log: log.child({ component: 'workspaces' }) });
  const metrics = o.metrics ?? new Metrics();
  const usage = new UsageMeter({
    store: stores.usage,
    jobs: stores.jobs,
    users: stores.users,
    log: log.child({ component: 'usage' }),
    storage: { userBytes: (userId) => workspaces.storedBytes(userId) },
    checkpointMs: (settings.usageCheckpointSeconds ?? 300) * 1000,
  });
  const uploads = new UploadsService(stores.uploads, o.blobs, log.child({ component: 'uploads' }), settings.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES);
  const stdin = new StdinHub();
  const live = new LiveManager({
    store: stores.jobs,
    logs,
    pool,
    workspaces,
    log: log.child({ component: 'live' }),
    idle: {
      freezeAfterMs: (settings.freezeAfterSeconds ?? DEFAULT_FREEZE_AFTER_SECONDS) * 1000,
      sleepAfterMs: (settings.sleepAfterSeconds ?? DEFAULT_SLEEP_AFTER_SECONDS) * 1000,
      cpuBusyFraction: (settings.idleCpuPercent ?? DEFAULT_IDLE_CPU_PERCENT) / 100,
      netBusyBytesPerSecond: settings.idleNetBytesPerSecond ?? DEFAULT_IDLE_NET_BYTES_PER_SECOND,
    },
    wakeTimeoutMs: settings.wakeTimeoutSeconds !== undefined ? settings.wakeTimeoutSeconds * 1000 : undefined,
    maxOutputBytes: settings.maxOutputBytes,
    usage,
    events,
  });
  const scheduler = new Scheduler({
    store: stores.jobs,
    logs,
    pool,
    log: log.child({ component: 'scheduler' }),
    jobTimeoutSeconds: settings.jobTimeoutSeconds,
    maxOutputBytes: settings.maxOutputBytes,
    maxConcurrentJobs: settings.maxConcurrentJobs,
    maxRunningJobsPerUser: settings.maxRunningJobsPerUser,
    admission: o.admission,
    workspaces,
    files: uploads,
    usage,
    metrics,
    live,
    events,
    stdin,
  });
  live.useSlots(scheduler);
  o.urls?.watch(live);
  const users = new UsersService(stores.users, log.child({ component: 'users' }));
  const sessions = new SessionsService(stores.sessions, stores.users, (authorization) => users.authenticate(authorization), log.child({ component: 'sessions' }), {
    sessionTtlMs: (settings.sessionTtlHours ?? 168) * 3600_000,
  });
  const jobLimits = { maxPendingJobsPerUser: settings.maxPendingJobsPerUser ?? DEFAULT_MAX_PENDING_JOBS_PER_USER, admission: o.admission, quota: usage };
  metrics.setSources({ jobsByStatus: () => stores.jobs.countJobsByStatus(), scheduler: () => scheduler.counts(), pool: () => pool.status() });
  const dispatcher = new WebhookDispatcher({
    store: stores.webhooks,
    log: log.child({ component: 'webhook-dispatcher' }),
    clock: settings.clock,
    allowPrivate: settings.webhookAllowPrivate ?? false,
    ...settings.webhookRetry,
  });
  const webhooks = new WebhooksService({
    store: stores.webhooks,
    jobs: stores.jobs,
    logs: stores.logs,
    log: log.child({ component: 'webhooks' }),
    allowPrivate: settings.webhookAllowPrivate ?? false,
    publicUrl: settings.publicUrl ?? (() => 'http://127.0.0.1:8090'),
    clock: settings.clock,
    onQueued: () => dispatcher.kick(),
  });
  const jobs = new JobsService(stores.jobs, logs, scheduler, log.child({ component: 'jobs' }), jobLimits, workspaces, uploads, { live, access: o.access }, webhooks, stdin);
  const cron = new CronService({
    store: stores.cron,
    users: stores.users,
    jobs,
    jobStore: stores.jobs,
    log: log.child({ component: 'cron' }),
    clock: settings.clock,
    allowSeconds: settings.cronAllowSeconds,
    missedAfterMs: settings.cronMissedAfterMs,
    checkWebhook: (userId, url) => webhooks.checkJobTarget(userId, url),
  });
  events.add(webhooks);
  events.add(cron);
  const exec = new ExecService({ jobs, live, log: log.child({ component: 'exec' }) });
  const sandboxFiles = new SandboxFilesService({ jobs, live, workspaces, maxBytes: settings.filesMaxBytes ?? DEFAULT_FILES_MAX_BYTES, log: log.child({ component: 'sandbox-files' }) });
  const app = await buildApp({
    users,
    jobs,
    workspaces,
    uploads,
    cron,
    webhooks,
    sandboxFiles,
    urls: o.urls,
    poolStatus: () => pool.status(),
    exec,
    tickets: new TerminalTickets(),
    sessions,
    webDir: settings.webDir,
    trustProxy: settings.trustProxy,
    log: log.child({ component: 'api' }),
    bodyLimitBytes: settings.bodyLimitBytes,
    sseHeartbeatSeconds: settings.sseHeartbeatSeconds,
    sseStallMs: settings.sseStallMs,
    usage,
    metrics,
    metricsToken: settings.metricsToken,
  });
  return {
    users,
    sessions,
    jobs,
    logs,
    scheduler,
    workspaces,
    uploads,
    usage,
    metrics,
    exec,
    live,
    cron,
    webhooks,
    dispatcher,
    app,
    async start() {
      await workspaces.init();
      await scheduler.start();
      await live.start();
      retention.start();
      cron.start();
      dispatcher.start();
    },
    async close() {
      await retention.stop();
      usage.stop();
      await cron.stop();
      await Promise.all([live.shutdown(), scheduler.shutdown()]);
      await dispatcher.stop();
      o.urls?.close();
      await workspaces.shutdown();
      logs.shutdownFollowers();
      await app.close();
      await logs.flush();
    },
  };
}

/** The sync engine, telling listeners what each sync changed (for webhooks and their changed files). */
function announcingSyncer(inner: WorkspaceSyncer, events: JobEvents): WorkspaceSyncer {
  return {
    sync: async (ws, dir, opts) => {
      const r = await inner.sync(ws, dir, opts);
      const dot = ws.indexOf('.');
      const changes = (r as { changes?: ChangeSet }).changes ?? { added: [], modified: [], deleted: [], truncated: false };
      await events.workspaceSynced({ userId: ws.slice(0, dot), workspace: ws.slice(dot + 1), version: r.version, changes });
      return r;
    },
    restore: (ws, dir, opts) => inner.restore(ws, dir, opts),
    history: (ws) => inner.history(ws),
    latest: (ws) => inner.latest(ws),
    delete: (ws) => inner.delete(ws),
    snapshot: inner.snapshot && ((ws) => inner.snapshot!(ws)),
  };
}
