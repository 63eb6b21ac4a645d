import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newId } from '../src/services/tokens.js';
import { UniqueViolationError, type User } from '../src/storage/metadata/store.js';
import type { UrlRouteRecord } from '../src/storage/metadata/url-routes.js';
import { STORE_BACKENDS, job, type StoreBackend } from './helpers/stores.js';

/** The URL route store (and the job lookup aliases use) on every database driver. */
for (const backend of STORE_BACKENDS)
  describe(`URL route store on ${backend.name}`, () => {
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

    const route = (user: User, subdomain: string, over: Partial<UrlRouteRecord> = {}): UrlRouteRecord => ({
      subdomain, user_id: user.id, kind: 'alias', job_id: null, workspace_id: 'site', port: 8080, auth: 'public', created_at: new Date().toISOString(), ...over,
    });

    it('subdomains are unique across users; one job route per job and port', async () => {
      const r = db.stores.urlRoutes;
      await r.insertRoute(route(alice, 'shop'));
      await assert.rejects(r.insertRoute(route(bob, 'shop')), UniqueViolationError);
      const j = job(alice.id, { persistent: true, status: 'running' });
      await db.stores.jobs.insertJob(j);
      await r.insertRoute(route(alice, 'abcdef012345', { kind: 'job', job_id: j.request_id, workspace_id: null, port: 3000 }));
      await assert.rejects(r.insertRoute(route(alice, 'abcdef012346', { kind: 'job', job_id: j.request_id, workspace_id: null, port: 3000 })), UniqueViolationError);
      assert.equal((await r.getJobRoute(j.request_id, 3000))!.subdomain, 'abcdef012345');
      assert.equal((await r.getRoute('abcdef012345'))!.port, 3000);
      assert.equal(await r.getJobRoute(j.request_id, 3001), undefined);
    });

    it('lists and deletes only the owner\'s aliases; auth mode is stored', async () => {
      const r = db.stores.urlRoutes;
      await r.insertRoute(route(bob, 'bobs', { auth: 'token' }));
      assert.deepEqual((await r.listAliases(alice.id)).map((a) => a.subdomain), ['shop']);
      assert.equal((await r.getRoute('bobs'))!.auth, 'token');
      await r.setAuth('bobs', 'public');
      assert.equal((await r.getRoute('bobs'))!.auth, 'public');
      assert.equal(await r.deleteAlias(alice.id, 'bobs'), false);
      assert.equal(await r.deleteAlias(bob.id, 'bobs'), true);
      assert.equal(await r.getRoute('bobs'), undefined);
    });

    it('findWorkspaceJob: the newest persistent job of the user on the workspace in the given statuses', async () => {
      const jobs = db.stores.jobs;
      const old = job(alice.id, { persistent: true, workspace_id: 'web', status: 'completed' });
      const cur = job(alice.id, { persistent: true, workspace_id: 'web', status: 'sleeping' });
      const other = job(bob.id, { persistent: true, workspace_id: 'web', status: 'running' });
      const plain = job(alice.id, { persistent: false, workspace_id: 'web', status: 'running' });
      for (const x of [old, cur, other, plain]) await jobs.insertJob(x);
      assert.equal((await jobs.findWorkspaceJob(alice.id, 'web', ['running', 'sleeping']))!.request_id, cur.request_id);
      assert.equal((await jobs.findWorkspaceJob(alice.id, 'web', ['completed']))!.request_id, old.request_id);
      assert.equal((await jobs.findWorkspaceJob(bob.id, 'web', ['sleeping']))?.request_id, undefined);
      assert.equal(await jobs.findWorkspaceJob(alice.id, 'nope', ['running']), undefined);
    });
  });
