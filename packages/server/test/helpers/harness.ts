import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { composeControlPlane } from '../../src/compose.js';
import { silentLogger } from '../../src/logger.js';
import type { Scheduler } from '../../src/scheduler/scheduler.js';
import type { LiveManager } from '../../src/sandboxes/manager.js';
import type { AccessGrant } from '../../src/sandboxes/live.js';
import type { Admission } from '../../src/services/admission.js';
import type { JobLogs } from '../../src/services/job-logs.js';
import type { JobsService } from '../../src/services/jobs.js';
import type { UsersService } from '../../src/services/users.js';
import { createBlobStore, type BlobStore } from '../../src/storage/blobs/index.js';
import { openStores, type Stores } from '../../src/storage/stores.js';
import { LocalLayers } from '../../src/workspaces/local-layers.js';
import type { WorkspaceService } from '../../src/workspaces/service.js';
import type { WorkspaceSyncer } from '../../src/workspaces/types.js';
import { FakePool } from './fake-runtime.js';

/** An in-process app on a temp SQLite database and the fake pool (for `app.inject()` tests). */
export interface Harness {
  app: FastifyInstance;
  stores: Stores;
  pool: FakePool;
  scheduler: Scheduler;
  /** Persistent jobs' sandboxes (attach, touch, state, onChange). */
  live: LiveManager;
  logs: JobLogs;
  users: UsersService;
  workspaces: WorkspaceService;
  /** The filesystem blob store under the harness's temp dir (uploaded files). */
  blobs: BlobStore;
  /** Workspace layers (real ext4 images under the harness's temp dir). */
  layers: LocalLayers;
  adminToken: string;
  /** Creates a non-admin user and returns its token. */
  makeUser(name: string): Promise<string>;
  /** Polls a job's status until it is no longer pending/running (or, persistent, its script is done). */
  waitDone(token: string, id: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  jobTimeoutSeconds?: number;
  maxOutputBytes?: number;
  maxConcurrentJobs?: number;
  bodyLimitBytes?: number;
  databaseUrl?: string;
  /** Longest an SSE follower's socket may accept nothing before it is cut off (ms). */
  sseStallMs?: number;
  maxRunningJobsPerUser?: number;
  /** Admission control for submissions and the scheduler (absent: none). */
  admission?: Admission;
  /** Largest uploaded file in bytes (default 100 MiB). */
  maxUploadBytes?: number;
  /** Image version new workspaces record (default "test-image"). */
  imageVersion?: string;
  /** The workspace sync engine (absent: workspaces stay on this host). */
  syncer?: WorkspaceSyncer;
  /** Days a finished job's output is kept (default 0: forever). */
  logRetentionDays?: number;
  /** Time between log retention sweeps. */
  logRetentionIntervalMs?: number;
  /** Idle seconds before a persistent sandbox freezes / sleeps (defaults 60 / 600; fractions allowed). */
  freezeAfterSeconds?: number;
  sleepAfterSeconds?: number;
  /** Grants of the access call (absent: 501). */
  access?: { url?: AccessGrant; ssh?: AccessGrant };
}

export async function createHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'mags-harness-'));
  const stores = await openStores({ url: opts.databaseUrl, sqlitePath: join(dir, 'mags.db') });
  const log = silentLogger();
  const pool = new FakePool();
  const layers = new LocalLayers(join(dir, 'workspaces'));
  const blobs = await createBlobStore({ driver: 'fs', root: join(dir, 'blobs') });
  const plane = await composeControlPlane({
    stores,
    pool,
    log,
    admission: opts.admission,
    blobs,
    workspaces: { layers, syncer: opts.syncer, imageVersion: () => opts.imageVersion ?? 'test-image' },
    access: opts.access,
    settings: {
      jobTimeoutSeconds: opts.jobTimeoutSeconds ?? 60,
      maxOutputBytes: opts.maxOutputBytes ?? 1024 * 1024,
      maxConcurrentJobs: opts.maxConcurrentJobs ?? 8,
      maxRunningJobsPerUser: opts.maxRunningJobsPerUser,
      bodyLimitBytes: opts.bodyLimitBytes,
      maxUploadBytes: opts.maxUploadBytes,
      sseHeartbeatSeconds: 1,
      sseStallMs: opts.sseStallMs,
      logRetentionDays: opts.logRetentionDays,
      logRetentionIntervalMs: opts.logRetentionIntervalMs,
      freezeAfterSeconds: opts.freezeAfterSeconds,
      sleepAfterSeconds: opts.sleepAfterSeconds,
    },
  });
  const { app, scheduler, logs, users, workspaces, live } = plane;
  const admin = (await users.bootstrapAdmin())!;
  await plane.start();
  return {
    app,
    stores,
    pool,
    scheduler,
    live,
    logs,
    users,
    workspaces,
    blobs,
    layers,
    adminToken: admin.token,
    async makeUser(name) {
      const res = await app.inject({ method: 'POST', url: '/api/v1/users', headers: { authorization: `Bearer ${admin.token}` }, payload: { name } });
      if (res.statusCode !== 201) throw new Error(`could not create user ${name}: ${res.body}`);
      return (res.json() as { token: string }).token;
    },
    async waitDone(token, id, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const res = await app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${id}/status`, headers: { authorization: `Bearer ${token}` } });
        const body = res.json() as Record<string, unknown>;
        if (body.status !== 'pending' && body.status !== 'running') return body;
        // A persistent job whose script is done stays `running` with its sandbox.
        if (body.persistent && body.status === 'running' && body.exit_code !== null) return body;
        if (Date.now() > end) throw new Error(`job ${id} still ${String(body.status)} after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await plane.close();
      await stores.close();
      await pool.stop();
      await layers.shutdown();
      await blobs.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
