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
import { JobLogs } from './services/job-logs.js';
import { LogRetention } from './services/log-retention.js';
import { DEFAULT_MAX_PENDING_JOBS_PER_USER, JobsService } from './services/jobs.js';
import { StdinHub } from './services/stdin.js';
import { DEFAULT_MAX_UPLOAD_BYTES, UploadsService } from './services/uploads.js';
import { UsersService } from './services/users.js';
import type { BlobStore } from './storage/blobs/blob-store.js';
import type { Stores } from './storage/stores.js';
import { WorkspaceService, type WorkspaceServiceOptions } from './workspaces/service.js';

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
  /** Time between log retention sweeps (default one hour). */
  logRetentionIntervalMs?: number;
}

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
}

/** The wired control plane. `start()` reconciles and starts the queue; `close()` undoes everything but the stores and pool. */
export interface ControlPlane {
  users: UsersService;
  jobs: JobsService;
  logs: JobLogs;
  scheduler: Scheduler;
  workspaces: WorkspaceService;
  uploads: UploadsService;
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
  const retention = new LogRetention(stores.logs, log.child({ component: 'log-retention' }), {
    days: settings.logRetentionDays ?? 0,
    intervalMs: settings.logRetentionIntervalMs,
  });
  const workspaces = new WorkspaceService({ admission: o.admission, ...o.workspaces, store: stores.workspaces, jobs: stores.jobs, log: log.child({ component: 'workspaces' }) });
  const uploads = new UploadsService(stores.uploads, o.blobs, log.child({ component: 'uploads' }), settings.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES);
  const stdin = new StdinHub();
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
    stdin,
  });
  const users = new UsersService(stores.users, log.child({ component: 'users' }));
  const jobLimits = { maxPendingJobsPerUser: settings.maxPendingJobsPerUser ?? DEFAULT_MAX_PENDING_JOBS_PER_USER, admission: o.admission };
  const jobs = new JobsService(stores.jobs, logs, scheduler, log.child({ component: 'jobs' }), jobLimits, workspaces, uploads, stdin);
  const app = await buildApp({
    users,
    jobs,
    workspaces,
    uploads,
    poolStatus: () => pool.status(),
    log: log.child({ component: 'api' }),
    bodyLimitBytes: settings.bodyLimitBytes,
    sseHeartbeatSeconds: settings.sseHeartbeatSeconds,
    sseStallMs: settings.sseStallMs,
  });
  return {
    users,
    jobs,
    logs,
    scheduler,
    workspaces,
    uploads,
    app,
    async start() {
      await workspaces.init();
      await scheduler.start();
      retention.start();
    },
    async close() {
      await retention.stop();
      await scheduler.shutdown();
      await workspaces.shutdown();
      logs.shutdownFollowers();
      await app.close();
      await logs.flush();
    },
  };
}
