/**
 * Workspaces through the HTTP API in-process (fake sandboxes, real SQLite and real ext4 layers):
 * name validation, busy workspaces, delete, ownership, base workspaces, sync with and without an
 * engine.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mountsUnder } from '../src/host/mounts.js';
import { silentLogger } from '../src/logger.js';
import { LocalLayers } from '../src/workspaces/local-layers.js';
import { WorkspaceService } from '../src/workspaces/service.js';
import type { SyncResult, VersionInfo, WorkspaceSyncer } from '../src/workspaces/types.js';
import { createHarness, type Harness } from './helpers/harness.js';

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

async function submit(h: Harness, token: string, body: Record<string, unknown>) {
  return h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: auth(token), payload: { type: 'inline', ...body } });
}

async function listWs(h: Harness, token: string): Promise<Array<Record<string, unknown>>> {
  const res = await h.app.inject({ method: 'GET', url: '/api/v1/workspaces', headers: auth(token) });
  assert.equal(res.statusCode, 200, res.body);
  return (res.json() as { workspaces: Array<Record<string, unknown>> }).workspaces;
}

describe('workspaces API', () => {
  it('refuses hostile workspace names with VALIDATION_ERROR before touching the disk', async () => {
    const h = await createHarness();
    try {
      const bad = ['..', '.', 'a/b', '../x', '/etc', 'a\u0000b', 'a\nb', '.hidden', '-rf', 'x'.repeat(65), 'ü', ' '];
      for (const name of bad) {
        for (const field of ['workspace_id', 'base_workspace_id']) {
          const res = await submit(h, h.adminToken, { script: 'true', [field]: name });
          assert.equal(res.statusCode, 400, `${field}=${JSON.stringify(name)}: ${res.body}`);
          assert.equal((res.json() as { code: string }).code, 'VALIDATION_ERROR');
        }
        const del = await h.app.inject({ method: 'DELETE', url: `/api/v1/workspaces/${encodeURIComponent(name)}`, headers: auth(h.adminToken) });
        // "." resolves to the collection path, which has no DELETE: 405.
        assert.ok([400, 404, 405].includes(del.statusCode), `DELETE ${JSON.stringify(name)}: ${del.statusCode}`);
        if (del.statusCode === 400) assert.equal((del.json() as { code: string }).code, 'VALIDATION_ERROR');
      }
      // The router resolves an encoded ".." itself: no workspace route sees it.
      const dotdot = await h.app.inject({ method: 'DELETE', url: '/api/v1/workspaces/%2e%2e', headers: auth(h.adminToken) });
      assert.equal(dotdot.statusCode, 404, dotdot.body);
      assert.equal((await h.stores.jobs.countJobs()), 0, 'no job was stored');
      assert.deepEqual(await mountsUnder(h.layers.root), []);
    } finally {
      await h.close();
    }
  });

  it('runs a job on the workspace layer, lists it, and refuses a second job and delete while it runs (409 WORKSPACE_BUSY)', async () => {
    const h = await createHarness();
    try {
      const first = await submit(h, h.adminToken, { script: 'sleep 1', workspace_id: 'proj', disk_gb: 1 });
      assert.equal(first.statusCode, 202, first.body);
      const id = (first.json() as { request_id: string }).request_id;

      const second = await submit(h, h.adminToken, { script: 'true', workspace_id: 'proj' });
      assert.equal(second.statusCode, 409, second.body);
      const body = second.json() as { code: string; error: string };
      assert.equal(body.code, 'WORKSPACE_BUSY');
      assert.match(body.error, /already in use/);
      assert.ok(body.error.includes(id), 'names the job holding it');

      const del = await h.app.inject({ method: 'DELETE', url: '/api/v1/workspaces/proj', headers: auth(h.adminToken) });
      assert.equal(del.statusCode, 409, del.body);
      assert.equal((del.json() as { code: string }).code, 'WORKSPACE_BUSY');
      const listed = await listWs(h, h.adminToken);
      assert.equal(listed.length, 1);
      assert.equal(listed[0]!.in_use, true);

      const done = await h.waitDone(h.adminToken, id);
      assert.equal(done.status, 'completed', JSON.stringify(done));
      const spec = h.pool.specs.at(-1)!;
      assert.ok(spec.workspaceLayerDir!.startsWith(h.layers.root + '/'), spec.workspaceLayerDir);
      assert.match(spec.workspaceLayerDir!, /\/proj\/mnt\/upper$/);

      // The job ended: the layer is unmounted once its lease is closed, and the next job may run.
      const third = await submit(h, h.adminToken, { script: 'true', workspace_id: 'proj' });
      assert.equal(third.statusCode, 202, third.body);
      const thirdDone = await h.waitDone(h.adminToken, (third.json() as { request_id: string }).request_id);
      assert.equal(thirdDone.status, 'completed', JSON.stringify(thirdDone));
      await waitFor(async () => (await mountsUnder(h.layers.root)).length === 0);

      const [ws] = await listWs(h, h.adminToken);
      assert.equal(ws!.workspace_id, 'proj');
      assert.equal(ws!.image_version, 'test-image');
      assert.equal(ws!.disk_gb, 2, 'grown by the second job (default disk_gb 2)');
      assert.equal(ws!.in_use, false);
      assert.equal(ws!.versions, null, 'no engine: no stored versions');
      assert.ok((ws!.size_bytes as number) > 0);
      assert.ok(ws!.last_used_at);

      const ok = await h.app.inject({ method: 'DELETE', url: '/api/v1/workspaces/proj', headers: auth(h.adminToken) });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.deepEqual(await listWs(h, h.adminToken), []);
      assert.equal(await h.layers.exists((await h.stores.users.getUserByName('admin'))!.id, 'proj'), false, 'local layer removed');
      const again = await h.app.inject({ method: 'DELETE', url: '/api/v1/workspaces/proj', headers: auth(h.adminToken) });
      assert.equal(again.statusCode, 404);
      assert.equal((again.json() as { code: string }).code, 'WORKSPACE_NOT_FOUND');
    } finally {
      await h.close();
    }
  });

  it("keeps users' workspaces of the same name apart", async () => {
    const h = await createHarness();
    try {
      const bob = await h.makeUser('bob');
      const a = await submit(h, h.adminToken, { script: 'true', workspace_id: 'shared' });
      await h.waitDone(h.adminToken, (a.json() as { request_id: string }).request_id);
      assert.deepEqual(await listWs(h, bob), []);
      const bobDel = await h.app.inject({ method: 'DELETE', url: '/api/v1/workspaces/shared', headers: auth(bob) });
      assert.equal(bobDel.statusCode, 404);
      const bobBase = await submit(h, bob, { script: 'true', base_workspace_id: 'shared' });
      assert.equal(bobBase.statusCode, 404, 'another user\'s workspace is no base');
      assert.equal((bobBase.json() as { code: string }).code, 'WORKSPACE_NOT_FOUND');
      const bobSync = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs/shared/sync', headers: auth(bob), payload: {} });
      assert.equal(bobSync.statusCode, 404);

      const b = await submit(h, bob, { script: 'true', workspace_id: 'shared' });
      assert.equal(b.statusCode, 202, 'not busy: alice\'s workspace is not bob\'s');
      await h.waitDone(bob, (b.json() as { request_id: string }).request_id);
      const dirs = h.pool.specs.map((s) => s.workspaceLayerDir);
      assert.equal(dirs.length, 2);
      assert.notEqual(dirs[0], dirs[1], 'separate layers');
      assert.equal((await listWs(h, bob)).length, 1);
      assert.equal((await listWs(h, h.adminToken)).length, 1);
    } finally {
      await h.close();
    }
  });

  it('stacks a base workspace read-only; a new workspace forked from it starts as its copy; unknown base is 404', async () => {
    const h = await createHarness();
    try {
      const unknown = await submit(h, h.adminToken, { script: 'true', base_workspace_id: 'nope' });
      assert.equal(unknown.statusCode, 404);
      assert.equal((unknown.json() as { code: string }).code, 'WORKSPACE_NOT_FOUND');

      const made = await submit(h, h.adminToken, { script: 'true', workspace_id: 'base' });
      await h.waitDone(h.adminToken, (made.json() as { request_id: string }).request_id);
      const admin = (await h.stores.users.getUserByName('admin'))!;
      const baseUpper = await h.layers.acquire(admin.id, 'base');
      await writeFile(join(baseUpper, 'from-base.txt'), 'hello');
      await h.layers.release(admin.id, 'base');

      const alone = await submit(h, h.adminToken, { script: 'true', base_workspace_id: 'base' });
      await h.waitDone(h.adminToken, (alone.json() as { request_id: string }).request_id);
      const aloneSpec = h.pool.specs.at(-1)!;
      assert.equal(aloneSpec.workspaceLayerDir, undefined, 'alone: a throw-away layer');
      assert.equal(aloneSpec.extraLowerDirs?.length, 1);
      assert.match(aloneSpec.extraLowerDirs![0]!, /\/base\/mnt\/upper$/);

      const fork = await submit(h, h.adminToken, { script: 'true', workspace_id: 'fork', base_workspace_id: 'base' });
      const forkDone = await h.waitDone(h.adminToken, (fork.json() as { request_id: string }).request_id);
      assert.equal(forkDone.status, 'completed');
      const logs = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${String(forkDone.request_id)}/logs`, headers: auth(h.adminToken) });
      assert.match(logs.body, /created from base workspace base/);
      const forkUpper = await h.layers.acquire(admin.id, 'fork');
      try {
        assert.equal(await readFile(join(forkUpper, 'from-base.txt'), 'utf8'), 'hello');
      } finally {
        await h.layers.release(admin.id, 'fork');
      }
      const self = await submit(h, h.adminToken, { script: 'true', workspace_id: 'base', base_workspace_id: 'base' });
      assert.equal(self.statusCode, 400);

      // A workspace that is the base of a running job cannot be deleted.
      const reader = await submit(h, h.adminToken, { script: 'sleep 1', base_workspace_id: 'base' });
      const readerId = (reader.json() as { request_id: string }).request_id;
      await waitFor(async () => h.layers.inUse(admin.id, 'base'));
      const del = await h.app.inject({ method: 'DELETE', url: '/api/v1/workspaces/base', headers: auth(h.adminToken) });
      assert.equal(del.statusCode, 409, del.body);
      assert.equal((del.json() as { code: string }).code, 'WORKSPACE_BUSY');
      await h.waitDone(h.adminToken, readerId);
      await waitFor(async () => !h.layers.inUse(admin.id, 'base'));
      const ok = await h.app.inject({ method: 'DELETE', url: '/api/v1/workspaces/base', headers: auth(h.adminToken) });
      assert.equal(ok.statusCode, 200, ok.body);
    } finally {
      await h.close();
    }
  });

  it('sync without an engine says nothing was uploaded; unknown ref is 404; a job without workspace is 422', async () => {
    const h = await createHarness();
    try {
      const s = await submit(h, h.adminToken, { script: 'true', workspace_id: 'w1', name: 'job-w1' });
      await h.waitDone(h.adminToken, (s.json() as { request_id: string }).request_id);
      for (const ref of ['w1', 'job-w1', (s.json() as { request_id: string }).request_id]) {
        const res = await h.app.inject({ method: 'POST', url: `/api/v1/mags-jobs/${ref}/sync`, headers: auth(h.adminToken), payload: {} });
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json() as { success: boolean; synced: boolean; workspace_id: string; message: string };
        assert.equal(body.synced, false);
        assert.equal(body.workspace_id, 'w1');
        assert.match(body.message, /this host only/);
      }
      const unknown = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs/nothing/sync', headers: auth(h.adminToken), payload: {} });
      assert.equal(unknown.statusCode, 404);
      const eph = await submit(h, h.adminToken, { script: 'true', name: 'eph' });
      await h.waitDone(h.adminToken, (eph.json() as { request_id: string }).request_id);
      const noWs = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs/eph/sync', headers: auth(h.adminToken), payload: {} });
      assert.equal(noWs.statusCode, 422, noWs.body);
    } finally {
      await h.close();
    }
  });
});

/** A sync engine double that records calls and keeps "versions" as copies of one file. */
class RecordingSyncer implements WorkspaceSyncer {
  calls: string[] = [];
  versions = new Map<string, { version: string; content: string }[]>();
  async sync(ws: string, layerDir: string): Promise<SyncResult> {
    this.calls.push(`sync ${ws}`);
    const content = await readFile(join(layerDir, 'state.txt'), 'utf8').catch(() => '');
    const list = this.versions.get(ws) ?? [];
    const version = `v${list.length + 1}`;
    list.unshift({ version, content });
    this.versions.set(ws, list);
    return { version };
  }
  async restore(ws: string, layerDir: string, opts?: { version?: string }): Promise<{ version?: string }> {
    this.calls.push(`restore ${ws} ${opts?.version ?? ''}`);
    const v = this.versions.get(ws)!.find((x) => x.version === opts?.version)!;
    await writeFile(join(layerDir, 'state.txt'), v.content);
    return { version: v.version };
  }
  async history(ws: string): Promise<VersionInfo[]> {
    return (this.versions.get(ws) ?? []).map((v) => ({ version: v.version, created_at: new Date(0).toISOString(), files: 1, bytes: v.content.length }));
  }
  async latest(ws: string): Promise<VersionInfo | undefined> {
    return (await this.history(ws))[0];
  }
  async delete(ws: string): Promise<void> {
    this.calls.push(`delete ${ws}`);
    this.versions.delete(ws);
  }
}

describe('workspace service with a sync engine', () => {
  it('syncs after a job, restores a missing local layer from the latest version, deletes stored versions', async () => {
    const h = await createHarness();
    const dir = await mkdtemp(join(tmpdir(), 'mags-ws-sync-'));
    const layers = new LocalLayers(join(dir, 'layers'));
    const syncer = new RecordingSyncer();
    const svc = new WorkspaceService({ store: h.stores.workspaces, jobs: h.stores.jobs, layers, syncer, imageVersion: () => 'img-1', log: silentLogger() });
    try {
      const admin = (await h.stores.users.getUserByName('admin'))!;
      const job = { ...(await fakeJob(h)), user_id: admin.id, workspace_id: 'synced', disk_gb: 1 };
      const lease = await svc.open(job, silentLogger());
      await writeFile(join(lease!.workspaceLayerDir!, 'state.txt'), 'one');
      await lease!.close();
      const k = `${admin.id}.synced`;
      assert.deepEqual(syncer.calls, [`sync ${k}`]);
      const [info] = await svc.list(admin);
      assert.equal(info!.versions, 1);
      assert.ok(info!.last_sync_at);

      // Lose the local copy: the next job's layer is restored from the latest version.
      await layers.remove(admin.id, 'synced');
      const lease2 = await svc.open({ ...job, request_id: 'job-2' }, silentLogger());
      try {
        assert.equal(await readFile(join(lease2!.workspaceLayerDir!, 'state.txt'), 'utf8'), 'one');
      } finally {
        await lease2!.close();
      }
      assert.deepEqual(syncer.calls, [`sync ${k}`, `restore ${k} v1`, `sync ${k}`]);

      // While a job runs, the workspace is synced every syncIntervalSeconds as well.
      const periodic = new WorkspaceService({ store: h.stores.workspaces, jobs: h.stores.jobs, layers, syncer, imageVersion: () => 'img-1', log: silentLogger(), syncIntervalSeconds: 0.1 });
      const before = syncer.calls.length;
      const lease3 = await periodic.open({ ...job, request_id: 'job-3' }, silentLogger());
      try {
        await waitFor(async () => syncer.calls.length >= before + 2);
      } finally {
        await lease3!.close();
      }
      const afterClose = syncer.calls.length;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(syncer.calls.length, afterClose, 'no sync after the lease closed');

      const now = await svc.syncNow(admin, 'synced');
      assert.equal(now.synced, true);
      assert.equal(now.version, `v${syncer.versions.get(k)!.length}`);
      await svc.delete(admin, 'synced');
      assert.equal(syncer.calls.at(-1), `delete ${k}`);
      assert.equal(syncer.versions.has(k), false);
      assert.deepEqual(await mountsUnder(layers.root), []);
    } finally {
      await layers.shutdown();
      await rm(dir, { recursive: true, force: true });
      await h.close();
    }
  });
});

async function fakeJob(h: Harness) {
  const res = await submit(h, h.adminToken, { script: 'true' });
  const id = (res.json() as { request_id: string }).request_id;
  await h.waitDone(h.adminToken, id);
  return (await h.stores.jobs.getJob(id))!;
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
