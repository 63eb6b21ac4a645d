import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newId } from '../src/services/tokens.js';
import type { User } from '../src/storage/metadata/store.js';
import type { WorkspaceRecord } from '../src/storage/metadata/workspaces.js';
import { STORE_BACKENDS, job, type StoreBackend } from './helpers/stores.js';

/** The workspace store's conformance tests on every database driver. */
for (const backend of STORE_BACKENDS)
  describe(`workspace store on ${backend.name}`, () => {
    let db: StoreBackend;
    let alice: User;
    let bob: User;
    before(async () => {
      db = await backend.open();
      const now = new Date().toISOString();
      alice = { id: newId(), name: 'alice', admin: false, created_at: now };
      bob = { id: newId(), name: 'bob', admin: false, created_at: now };
      await db.stores.users.createUser(alice);
      await db.stores.users.createUser(bob);
    });
    after(async () => {
      await db?.cleanup();
    });

    const record = (user: User, name: string, over: Partial<WorkspaceRecord> = {}): WorkspaceRecord => ({
      user_id: user.id,
      name,
      image_version: 'abc123abc123',
      disk_gb: 2,
      created_at: new Date().toISOString(),
      last_used_at: null,
      last_sync_at: null,
      ...over,
    });

    it('ensureWorkspace inserts once per (user, name) and says whether it did', async () => {
      const ws = db.stores.workspaces;
      const first = await ws.ensureWorkspace(record(alice, 'proj'));
      assert.equal(first.created, true);
      const again = await ws.ensureWorkspace(record(alice, 'proj', { disk_gb: 9, image_version: 'other' }));
      assert.equal(again.created, false);
      assert.equal(again.row.disk_gb, 2, 'the stored row wins');
      const bobs = await ws.ensureWorkspace(record(bob, 'proj'));
      assert.equal(bobs.created, true, 'same name, other user: a workspace of its own');
      assert.deepEqual((await ws.listWorkspaces(alice.id)).map((w) => w.name), ['proj']);
      assert.equal(await ws.getWorkspace(alice.id, 'nope'), undefined);
    });

    it("updateWorkspace and deleteWorkspace touch only the user's row", async () => {
      const ws = db.stores.workspaces;
      const at = new Date().toISOString();
      assert.equal(await ws.updateWorkspace(alice.id, 'proj', { last_sync_at: at, disk_gb: 4 }), true);
      assert.equal((await ws.getWorkspace(alice.id, 'proj'))?.last_sync_at, at);
      assert.equal((await ws.getWorkspace(bob.id, 'proj'))?.last_sync_at, null);
      assert.equal(await ws.updateWorkspace(alice.id, 'nope', { disk_gb: 4 }), false);
      assert.equal(await ws.deleteWorkspace(alice.id, 'proj'), true);
      assert.equal(await ws.deleteWorkspace(alice.id, 'proj'), false);
      assert.ok(await ws.getWorkspace(bob.id, 'proj'), "bob's workspace stays");
    });

    it('activeJob finds the pending or running job of this user on the workspace only', async () => {
      const ws = db.stores.workspaces;
      const done = { ...job(alice.id), workspace_id: 'busy', status: 'completed' as const };
      await db.stores.jobs.insertJob(done);
      assert.equal(await ws.activeJob(alice.id, 'busy'), undefined);
      const running = { ...job(alice.id), workspace_id: 'busy', status: 'running' as const };
      await db.stores.jobs.insertJob(running);
      assert.equal(await ws.activeJob(alice.id, 'busy'), running.request_id);
      assert.equal(await ws.activeJob(bob.id, 'busy'), undefined);
      const named = { ...job(bob.id), name: 'busy', status: 'pending' as const };
      await db.stores.jobs.insertJob(named);
      assert.equal(await ws.activeJob(bob.id, 'busy'), undefined, 'a job name is not a workspace');
    });
  });
