/**
 * Workspace history, restore to a version, resize, and the after-job sync surviving a blob store
 * outage: through the HTTP API in-process (fake sandboxes running host scripts in the layer, real
 * ext4 layers, the real sync engine on the file blob store), and on S3 (moto behind a TCP proxy that
 * the test takes down and brings back).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { mountsUnder } from '../src/host/mounts.js';
import { silentLogger } from '../src/logger.js';
import { Admission } from '../src/services/admission.js';
import { FsBlobStore, S3BlobStore } from '../src/storage/blobs/index.js';
import { LocalLayers } from '../src/workspaces/local-layers.js';
import { WorkspaceService } from '../src/workspaces/service.js';
import { WorkspaceSync } from '../src/workspaces/sync/index.js';
import { createHarness, type Harness } from './helpers/harness.js';
import { startMoto } from './helpers/moto.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

async function runJob(h: Harness, script: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const res = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: auth(h.adminToken), payload: { type: 'inline', script, workspace_id: 'proj', ...extra } });
  assert.equal(res.statusCode, 202, res.body);
  return h.waitDone(h.adminToken, (res.json() as { request_id: string }).request_id);
}

interface History {
  workspace_id: string;
  versions: Array<{ version: string; created_at: string; files: number; bytes: number; image_version: string | null }>;
}

describe('workspace history, restore and resize (API, file blob store)', () => {
  it('lists versions newest first, restores an older one as the newest, grows the disk, refuses what it must', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mags-ws-versions-'));
    const blobs = await FsBlobStore.open({ root: join(dir, 'blobs') });
    const syncer = new WorkspaceSync({ blobs, log: silentLogger(), cacheDir: join(dir, 'cache') });
    const admission = new Admission({ memoryMb: 1 << 20, vcpus: 64, freeDiskGb: () => 10 }, { memory: 1, cpu: 1, disk: 1 });
    const h = await createHarness({ syncer, admission });
    try {
      assert.equal((await runJob(h, 'echo one > state.txt')).status, 'completed');
      assert.equal((await runJob(h, 'echo two > state.txt')).status, 'completed');

      // A job's status is stored before its lease's sync ends: wait for the second version.
      let h1: History;
      for (const end = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 50))) {
        const hist = await h.app.inject({ method: 'GET', url: '/api/v1/workspaces/proj/history', headers: auth(h.adminToken) });
        assert.equal(hist.statusCode, 200, hist.body);
        h1 = hist.json() as History;
        if (h1.versions.length >= 2 || Date.now() > end) break;
      }
      assert.equal(h1.workspace_id, 'proj');
      assert.equal(h1.versions.length, 2);
      const [v2, v1] = h1.versions;
      assert.ok(v2!.version > v1!.version, 'newest first');
      assert.equal(v1!.image_version, 'test-image');
      assert.ok(v1!.files >= 1 && v1!.bytes >= 4 && Date.parse(v1!.created_at) > 0, JSON.stringify(v1));

      const none = await h.app.inject({ method: 'GET', url: '/api/v1/workspaces/nope/history', headers: auth(h.adminToken) });
      assert.equal(none.statusCode, 404);
      assert.equal((none.json() as { code: string }).code, 'WORKSPACE_NOT_FOUND');
      const unknown = await h.app.inject({ method: 'POST', url: '/api/v1/workspaces/proj/restore', headers: auth(h.adminToken), payload: { version: '000000000000001-abcdef' } });
      assert.equal(unknown.statusCode, 404, unknown.body);
      assert.equal((unknown.json() as { code: string }).code, 'VERSION_NOT_FOUND');
      const noBody = await h.app.inject({ method: 'POST', url: '/api/v1/workspaces/proj/restore', headers: auth(h.adminToken), payload: {} });
      assert.equal(noBody.statusCode, 400);

      const restored = await h.app.inject({ method: 'POST', url: '/api/v1/workspaces/proj/restore', headers: auth(h.adminToken), payload: { version: v1!.version } });
      assert.equal(restored.statusCode, 200, restored.body);
      const r = restored.json() as { restored_version: string; version: string };
      assert.equal(r.restored_version, v1!.version);
      assert.ok(r.version > v2!.version, 'the restored state is the newest version');
      const h2 = (await h.app.inject({ method: 'GET', url: '/api/v1/workspaces/proj/history', headers: auth(h.adminToken) })).json() as History;
      assert.deepEqual(h2.versions.map((v) => v.version), [r.version, v2!.version, v1!.version]);
      assert.equal((await runJob(h, 'test "$(cat state.txt)" = one')).status, 'completed', 'the next job sees the restored files');

      // Resize: never shrinks, not beyond the host, grows the file system the next job sees.
      const shrink = await h.app.inject({ method: 'PATCH', url: '/api/v1/workspaces/proj', headers: auth(h.adminToken), payload: { disk_gb: 1 } });
      assert.equal(shrink.statusCode, 422, shrink.body);
      assert.match((shrink.json() as { error: string }).error, /never shrinks/);
      const huge = await h.app.inject({ method: 'PATCH', url: '/api/v1/workspaces/proj', headers: auth(h.adminToken), payload: { disk_gb: 50 } });
      assert.equal(huge.statusCode, 400, huge.body);
      assert.equal((huge.json() as { code: string }).code, 'DISK_EXCEEDS_HOST');
      const grow = await h.app.inject({ method: 'PATCH', url: '/api/v1/workspaces/proj', headers: auth(h.adminToken), payload: { disk_gb: 5 } });
      assert.equal(grow.statusCode, 200, grow.body);
      assert.deepEqual(grow.json(), { success: true, workspace_id: 'proj', disk_gb: 5, grown: true });
      const listed = (await h.app.inject({ method: 'GET', url: '/api/v1/workspaces', headers: auth(h.adminToken) })).json() as { workspaces: Array<{ disk_gb: number }> };
      assert.equal(listed.workspaces[0]!.disk_gb, 5);
      assert.equal((await runJob(h, 'test "$(df -BG --output=size . | tail -1 | tr -dc 0-9)" -ge 5 && test "$(cat state.txt)" = one')).status, 'completed', 'the next job sees a 5 GB disk');

      // Busy while a job runs.
      const busyJob = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: auth(h.adminToken), payload: { type: 'inline', script: 'sleep 1', workspace_id: 'proj' } });
      assert.equal(busyJob.statusCode, 202);
      for (const req of [
        { method: 'POST' as const, url: '/api/v1/workspaces/proj/restore', payload: { version: v1!.version } },
        { method: 'PATCH' as const, url: '/api/v1/workspaces/proj', payload: { disk_gb: 6 } },
      ]) {
        const res = await h.app.inject({ ...req, headers: auth(h.adminToken) });
        assert.equal(res.statusCode, 409, `${req.method} ${req.url}: ${res.body}`);
        assert.equal((res.json() as { code: string }).code, 'WORKSPACE_BUSY');
      }
      await h.waitDone(h.adminToken, (busyJob.json() as { request_id: string }).request_id);
      // The lease ends (sync, unmount) after the job's status is stored.
      for (const end = Date.now() + 10_000; (await mountsUnder(h.layers.root)).length > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(await mountsUnder(h.layers.root), []);
    } finally {
      await h.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('without a sync engine: an empty history, and restore is 501 FEATURE_NOT_AVAILABLE', async () => {
    const h = await createHarness();
    try {
      assert.equal((await runJob(h, 'true')).status, 'completed');
      const hist = await h.app.inject({ method: 'GET', url: '/api/v1/workspaces/proj/history', headers: auth(h.adminToken) });
      assert.deepEqual(hist.json(), { workspace_id: 'proj', versions: [] });
      const res = await h.app.inject({ method: 'POST', url: '/api/v1/workspaces/proj/restore', headers: auth(h.adminToken), payload: { version: '000000000000001-abcdef' } });
      assert.equal(res.statusCode, 501, res.body);
    } finally {
      await h.close();
    }
  });
});

describe('after-job sync while the blob store is down (S3 on moto)', () => {
  it('the lease ends at once, the next job runs, restore and delete wait, and the retry completes once S3 is back', async () => {
    const moto = await startMoto();
    const proxy = new TcpProxy(moto.port);
    const dir = await mkdtemp(join(tmpdir(), 'mags-ws-retry-'));
    const h = await createHarness();
    const layers = new LocalLayers(join(dir, 'layers'));
    let svc: WorkspaceService | undefined;
    try {
      const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
      const admin = new S3Client({ endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
      try {
        await admin.send(new CreateBucketCommand({ Bucket: 'mags-retry' }));
      } finally {
        admin.destroy();
      }
      await proxy.up();
      const blobs = new S3BlobStore({ bucket: 'mags-retry', endpoint: `http://127.0.0.1:${proxy.port}`, region: 'us-east-1', forcePathStyle: true, credentials, maxAttempts: 1 });
      const syncer = new WorkspaceSync({ blobs, log: silentLogger(), cacheDir: join(dir, 'cache') });
      svc = new WorkspaceService({ store: h.stores.workspaces, jobs: h.stores.jobs, layers, syncer, imageVersion: () => 'img-1', log: silentLogger(), syncRetry: { attempts: 100, baseDelayMs: 100, maxDelayMs: 200 } });
      const user = (await h.stores.users.getUserByName('admin'))!;
      const res = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: auth(h.adminToken), payload: { type: 'inline', script: 'true' } });
      const base = (await h.stores.jobs.getJob((res.json() as { request_id: string }).request_id))!;
      const job = { ...base, user_id: user.id, workspace_id: 'flaky', base_workspace_id: null, disk_gb: 1 };
      const k = `${user.id}.flaky`;

      const lease1 = (await svc.open({ ...job, request_id: 'job-1' }, silentLogger()))!;
      await writeFile(join(lease1.workspaceLayerDir!, 'state.txt'), 'one');
      await lease1.close();
      assert.equal((await syncer.history(k)).length, 1);

      const lease2 = (await svc.open({ ...job, request_id: 'job-2' }, silentLogger()))!;
      await writeFile(join(lease2.workspaceLayerDir!, 'state.txt'), 'two');
      await proxy.down();
      const t0 = Date.now();
      await lease2.close();
      assert.ok(Date.now() - t0 < 20_000, `the lease closed in ${Date.now() - t0} ms despite the outage`);

      const lease3 = (await svc.open({ ...job, request_id: 'job-3' }, silentLogger()))!;
      assert.equal(await readFile(join(lease3.workspaceLayerDir!, 'state.txt'), 'utf8'), 'two', 'the next job runs on the unsynced layer');
      await writeFile(join(lease3.workspaceLayerDir!, 'state.txt'), 'three');
      await lease3.close();
      await assert.rejects(svc.delete(user, 'flaky'), (err: { code?: string }) => err.code === 'WORKSPACE_BUSY');
      await assert.rejects(svc.restore(user, 'flaky', 'x'), (err: { code?: string }) => err.code === 'WORKSPACE_BUSY');
      assert.equal(layers.inUse(user.id, 'flaky'), true, 'the retry keeps the layer mounted');

      await proxy.up();
      const end = Date.now() + 60_000;
      while (layers.inUse(user.id, 'flaky')) {
        if (Date.now() > end) throw new Error('the background sync did not finish after S3 came back');
        await new Promise((r) => setTimeout(r, 100));
      }
      const latest = (await syncer.history(k))[0]!;
      const check = join(dir, 'check');
      await syncer.restore(k, check, { version: latest.version });
      assert.equal(await readFile(join(check, 'state.txt'), 'utf8'), 'three', 'the newest version holds the last job\'s state');
      await svc.delete(user, 'flaky');
      assert.deepEqual(await mountsUnder(layers.root), []);
    } finally {
      await svc?.shutdown();
      await layers.shutdown();
      if (proxy.isUp) await proxy.down();
      await moto.stop();
      await h.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
