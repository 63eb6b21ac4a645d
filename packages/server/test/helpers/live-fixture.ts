/**
 * An in-process control plane on real sandboxes: the container driver behind a real pool, the
 * lifecycle manager (LiveManager) composeControlPlane builds, real workspace layers, the API
 * listening on a loopback port and the SSH role wired as main.ts wires it. For the exec, SSH and
 * terminal tests, which need persistent sandboxes that really run, freeze and sleep.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeControlPlane, type ControlPlane } from '../../src/compose.js';
import { silentLogger } from '../../src/logger.js';
import { createPool } from '../../src/scheduler/pool.js';
import type { SshGatewayLimits } from '../../src/ssh/gateway.js';
import { SshRole } from '../../src/ssh/role.js';
import { createBlobStore, type BlobStore } from '../../src/storage/blobs/index.js';
import { openStores, type Stores } from '../../src/storage/stores.js';
import { LocalLayers } from '../../src/workspaces/local-layers.js';
import { containerTestDriver, type ContainerTestDriver } from './container-runtime.js';

export interface LivePlane {
  plane: ControlPlane;
  stores: Stores;
  /** The API's base URL (http://127.0.0.1:PORT). */
  url: string;
  adminToken: string;
  ssh: SshRole;
  sshPort: number;
  dir: string;
  makeUser(name: string): Promise<string>;
  /** POST/GET as a user; answers status and parsed JSON. */
  call(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Submits a persistent job and waits until it runs with a sandbox. */
  persistent(name: string, extra?: Record<string, unknown>, token?: string): Promise<string>;
  /** Waits up to 20 s until the lifecycle manager has the job in `state` (frozen, sleeping, ...). */
  waitState(id: string, state: string): Promise<void>;
  close(): Promise<void>;
}

export interface LivePlaneOptions {
  freezeAfterSeconds?: number;
  sleepAfterSeconds?: number;
  sshLimits?: Partial<SshGatewayLimits>;
}

export async function createLivePlane(opts: LivePlaneOptions = {}): Promise<LivePlane> {
  const dir = await mkdtemp(join(tmpdir(), 'mags-live-'));
  const log = silentLogger();
  const cleanups: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const fn of cleanups.reverse()) await fn();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const rt: ContainerTestDriver = await containerTestDriver();
    cleanups.push(() => rt.close());
    await rt.driver.init();
    const pool = createPool(rt.driver, { minSize: 0, maxSize: 4, defaultLimits: { vcpus: 1, memoryMb: 512, diskGb: 2, pids: 512 }, log });
    cleanups.push(() => pool.stop());
    const stores = await openStores({ sqlitePath: join(dir, 'mags.db') });
    cleanups.push(() => stores.close());
    const layers = new LocalLayers(join(dir, 'workspaces'));
    cleanups.push(() => layers.shutdown());
    const blobs: BlobStore = await createBlobStore({ driver: 'fs', root: join(dir, 'blobs') });
    cleanups.push(() => blobs.close());
    const ssh = new SshRole({ keys: stores.sshKeys, jobs: stores.jobs, dataDir: dir, log, limits: opts.sshLimits });
    const plane = await composeControlPlane({
      stores,
      pool,
      log,
      blobs,
      access: { ssh: ssh.grant },
      workspaces: { layers, imageVersion: () => 'test-image' },
      settings: {
        jobTimeoutSeconds: 600,
        maxOutputBytes: 1024 * 1024,
        maxConcurrentJobs: 8,
        freezeAfterSeconds: opts.freezeAfterSeconds ?? 0,
        sleepAfterSeconds: opts.sleepAfterSeconds ?? 0,
      },
    });
    cleanups.push(() => plane.close());
    const admin = (await plane.users.bootstrapAdmin())!;
    await plane.start();
    const url = await plane.app.listen({ host: '127.0.0.1', port: 0 });
    const sshPort = await ssh.listen(plane.live, 0, '127.0.0.1');
    cleanups.push(() => ssh.close());
    const call: LivePlane['call'] = async (method, path, body, token = admin.token) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    return {
      plane,
      stores,
      url,
      adminToken: admin.token,
      ssh,
      sshPort,
      dir,
      call,
      async makeUser(name) {
        const r = await call('POST', '/api/v1/users', { name });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        return r.body.token as string;
      },
      async persistent(name, extra = {}, token = admin.token) {
        const r = await call('POST', '/api/v1/mags-jobs', { script: 'true', type: 'inline', persistent: true, name, ...extra }, token);
        assert.equal(r.status, 202, JSON.stringify(r.body));
        const id = r.body.request_id as string;
        for (let i = 0; i < 600; i++) {
          const st = await call('GET', `/api/v1/mags-jobs/${id}/status`, undefined, token);
          if (st.body.status === 'running' && st.body.vm_id) return id;
          if (st.body.status !== 'pending' && st.body.status !== 'running') assert.fail(`job ${name} ended: ${JSON.stringify(st.body)}`);
          await new Promise((res) => setTimeout(res, 50));
        }
        assert.fail(`job ${name} did not start`);
      },
      async waitState(id, state) {
        for (let i = 0; i < 400; i++) {
          if (plane.live.state(id) === state) return;
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.fail(`job ${id} is ${plane.live.state(id)}, not ${state}`);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
