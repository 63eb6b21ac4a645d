import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashToken, newId } from '../src/services/tokens.js';
import { UniqueViolationError, type User } from '../src/storage/metadata/store.js';
import { migrations } from '../src/storage/metadata/db.js';
import { openStores, type Stores } from '../src/storage/stores.js';
import { STORE_BACKENDS, job, type StoreBackend } from './helpers/stores.js';

/** The same conformance tests of the users and jobs stores for every database driver. */
for (const backend of STORE_BACKENDS)
  describe(`users and jobs stores on ${backend.name}`, () => {
    let db: StoreBackend;
    let stores: Stores;
    let alice: User;
    let bob: User;
    before(async () => {
      db = await backend.open();
      stores = db.stores;
      // A new database runs every migration, in order.
      assert.deepEqual(stores.migrated, Object.keys(migrations(stores.dialect)));
      const again = await openStores(db.target);
      try {
        assert.deepEqual(again.migrated, [], 'migrations run once');
      } finally {
        await again.close();
      }
      const now = new Date().toISOString();
      alice = { id: newId(), name: 'alice', admin: true, created_at: now, email: null, disabled_at: null };
      bob = { id: newId(), name: 'bob', admin: false, created_at: now, email: null, disabled_at: null };
      await stores.users.createUser(alice);
      await stores.users.createUser(bob);
    });
    after(async () => {
      await db?.cleanup();
    });

    it('users: get, by name, list, count, unique names', async () => {
      assert.deepEqual(await stores.users.getUser(alice.id), alice);
      assert.deepEqual(await stores.users.getUserByName('bob'), bob);
      assert.equal(await stores.users.countUsers(), 2);
      assert.equal((await stores.users.listUsers()).length, 2);
      await assert.rejects(stores.users.createUser({ ...bob, id: newId() }), UniqueViolationError);
      assert.equal(await stores.users.getUser('nope'), undefined);
    });

    it('tokens: hash lookup, touch, list, revoke only own', async () => {
      const now = new Date().toISOString();
      const t = { id: newId(), user_id: bob.id, name: 'ci', token_hash: hashToken('mags_x'), created_at: now, last_used_at: null, revoked_at: null };
      await stores.users.createToken(t);
      const found = await stores.users.findToken(hashToken('mags_x'));
      assert.equal(found?.user.id, bob.id);
      await stores.users.touchToken(t.id, now);
      assert.equal((await stores.users.listTokens(bob.id))[0]?.last_used_at, now);
      assert.equal(await stores.users.revokeToken(alice.id, t.id, now), false, "alice cannot revoke bob's token");
      assert.equal(await stores.users.revokeToken(bob.id, t.id, now), true);
      assert.equal(await stores.users.findToken(hashToken('mags_x')), undefined);
      assert.equal((await stores.users.listTokens(bob.id)).length, 0);
    });

    it('createUserWithToken is one transaction', async () => {
      const now = new Date().toISOString();
      const u: User = { id: newId(), name: 'alice', admin: false, created_at: now };
      const t = { id: newId(), user_id: u.id, name: 'x', token_hash: hashToken('mags_y'), created_at: now, last_used_at: null, revoked_at: null };
      await assert.rejects(stores.users.createUserWithToken(u, t), UniqueViolationError);
      assert.equal(await stores.users.findToken(hashToken('mags_y')), undefined, 'no token without its user');
    });

    it('jobs: round trip with types intact', async () => {
      const j = job(alice.id, { name: 'n1', persistent: true, environment: { K: 'v "q"' }, file_ids: ['a'], timeout_seconds: 30 });
      await stores.jobs.insertJob(j);
      assert.deepEqual(await stores.jobs.getJob(j.request_id), j);
    });

    it('jobs: list newest first per user with total; by status oldest first', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const j = job(bob.id, { name: `b${i}` });
        ids.push(j.request_id);
        await stores.jobs.insertJob(j);
      }
      const { jobs, total } = await stores.jobs.listJobs(bob.id, 0, 3);
      assert.equal(total, 5);
      assert.deepEqual(jobs.map((j) => j.request_id), ids.slice(2).reverse());
      const p2 = await stores.jobs.listJobs(bob.id, 3, 3);
      assert.deepEqual(p2.jobs.map((j) => j.request_id), ids.slice(0, 2).reverse());
      const pending = await stores.jobs.listJobsByStatus(['pending']);
      assert.ok(pending.length >= 5);
      assert.equal((await stores.jobs.listJobs(alice.id, 0, 100)).jobs.some((j) => j.user_id !== alice.id), false);
    });

    it('jobs: find by id, name, workspace; live before newest; never another user', async () => {
      const old = job(alice.id, { name: 'w', workspace_id: 'ws', status: 'running' });
      const newer = job(alice.id, { name: 'w', workspace_id: 'ws', status: 'completed' });
      await stores.jobs.insertJob(old);
      await stores.jobs.insertJob(newer);
      assert.equal((await stores.jobs.findJobForUser(alice.id, 'w'))?.request_id, old.request_id, 'running beats newer completed');
      assert.equal((await stores.jobs.findJobForUser(alice.id, 'ws'))?.request_id, old.request_id);
      await stores.jobs.updateJob(old.request_id, { status: 'error' });
      assert.equal((await stores.jobs.findJobForUser(alice.id, 'w'))?.request_id, newer.request_id, 'else the newest');
      assert.equal(await stores.jobs.findJobForUser(bob.id, 'w'), undefined);
      assert.equal(await stores.jobs.findJobForUser(bob.id, old.request_id), undefined);
      assert.equal(await stores.jobs.findJobForUser(alice.id, "' OR 1=1 --"), undefined);
    });

    it('jobs: compare-and-set updates', async () => {
      const j = job(alice.id);
      await stores.jobs.insertJob(j);
      assert.equal(await stores.jobs.updateJob(j.request_id, { status: 'running', vm_id: 'vm1' }, ['pending']), true);
      assert.equal(await stores.jobs.updateJob(j.request_id, { status: 'running' }, ['pending']), false);
      assert.equal(await stores.jobs.updateJob(j.request_id, { status: 'completed', exit_code: 0, script_duration_ms: 12, no_sleep: true }, ['running']), true);
      const got = await stores.jobs.getJob(j.request_id);
      assert.equal(got?.status, 'completed');
      assert.equal(got?.exit_code, 0);
      assert.equal(got?.vm_id, 'vm1');
      assert.equal(got?.no_sleep, true);
      const total = await stores.jobs.countJobs();
      assert.ok(total >= 9);
      assert.equal(await stores.jobs.countUserJobs(alice.id, ['completed']), (await stores.jobs.listJobs(alice.id, 0, 1000)).jobs.filter((x) => x.status === 'completed').length);
      assert.equal(await stores.jobs.countUserJobs(alice.id, []), 0);
    });

    it('stores NUL-free hostile text as is', async () => {
      const name = "x'); DROP TABLE jobs; -- 🙂\u202e";
      const j = job(alice.id, { name, script: 'echo "$(cat /etc/passwd)"\n\\x00' });
      await stores.jobs.insertJob(j);
      assert.equal((await stores.jobs.findJobForUser(alice.id, name))?.script, j.script);
      assert.ok((await stores.jobs.countJobs()) > 0, 'the jobs table is still there');
    });
  });
