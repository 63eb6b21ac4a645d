import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { silentLogger } from '../src/logger.js';
import { JobLogs } from '../src/services/job-logs.js';
import { hashToken, newId } from '../src/services/tokens.js';
import { migrateToLatest, openDatabase, type OpenedDatabase } from '../src/storage/metadata/db.js';
import { KyselyStore } from '../src/storage/metadata/kysely-store.js';
import { UniqueViolationError, type Job, type User } from '../src/storage/metadata/store.js';
import { startPostgres, type TestPostgres } from './helpers/postgres.js';

function job(userId: string, over: Partial<Job> = {}): Job {
  const now = new Date().toISOString();
  return {
    request_id: newId(), user_id: userId, name: null, workspace_id: null, base_workspace_id: null, type: 'inline',
    script: 'echo hi', persistent: false, no_sleep: false, startup_command: null, environment: { A: '1' }, file_ids: [],
    disk_gb: 2, vcpus: 2, memory_mb: 1024, rootfs_type: null, timeout_seconds: null, api_version: 1, status: 'pending',
    exit_code: null, error_message: null, vm_id: null, host: null, subdomain: null, url: null, script_duration_ms: null,
    created_at: now, started_at: null, completed_at: null, updated_at: now, ...over,
  };
}

/** The same conformance tests for every store backend. */
function conformance(backend: string, open: () => Promise<OpenedDatabase>, cleanup: () => Promise<void>) {
  describe(`metadata store on ${backend}`, () => {
    let opened: OpenedDatabase;
    let store: KyselyStore;
    let alice: User;
    let bob: User;
    before(async () => {
      opened = await open();
      assert.deepEqual(await migrateToLatest(opened), ['001_initial']);
      assert.deepEqual(await migrateToLatest(opened), [], 'migrations run once');
      store = new KyselyStore(opened.db, opened.dialect);
      const now = new Date().toISOString();
      alice = { id: newId(), name: 'alice', admin: true, created_at: now };
      bob = { id: newId(), name: 'bob', admin: false, created_at: now };
      await store.createUser(alice);
      await store.createUser(bob);
    });
    after(async () => {
      await store?.close();
      await cleanup();
    });

    it('users: get, by name, list, count, unique names', async () => {
      assert.deepEqual(await store.getUser(alice.id), alice);
      assert.deepEqual(await store.getUserByName('bob'), bob);
      assert.equal(await store.countUsers(), 2);
      assert.equal((await store.listUsers()).length, 2);
      await assert.rejects(store.createUser({ ...bob, id: newId() }), UniqueViolationError);
      assert.equal(await store.getUser('nope'), undefined);
    });

    it('tokens: hash lookup, touch, list, revoke only own', async () => {
      const now = new Date().toISOString();
      const t = { id: newId(), user_id: bob.id, name: 'ci', token_hash: hashToken('mags_x'), created_at: now, last_used_at: null, revoked_at: null };
      await store.createToken(t);
      const found = await store.findToken(hashToken('mags_x'));
      assert.equal(found?.user.id, bob.id);
      await store.touchToken(t.id, now);
      assert.equal((await store.listTokens(bob.id))[0]?.last_used_at, now);
      assert.equal(await store.revokeToken(alice.id, t.id, now), false, "alice cannot revoke bob's token");
      assert.equal(await store.revokeToken(bob.id, t.id, now), true);
      assert.equal(await store.findToken(hashToken('mags_x')), undefined);
      assert.equal((await store.listTokens(bob.id)).length, 0);
    });

    it('createUserWithToken is one transaction', async () => {
      const now = new Date().toISOString();
      const u: User = { id: newId(), name: 'alice', admin: false, created_at: now };
      const t = { id: newId(), user_id: u.id, name: 'x', token_hash: hashToken('mags_y'), created_at: now, last_used_at: null, revoked_at: null };
      await assert.rejects(store.createUserWithToken(u, t), UniqueViolationError);
      assert.equal(await store.findToken(hashToken('mags_y')), undefined, 'no token without its user');
    });

    it('jobs: round trip with types intact', async () => {
      const j = job(alice.id, { name: 'n1', persistent: true, environment: { K: 'v "q"' }, file_ids: ['a'], timeout_seconds: 30 });
      await store.insertJob(j);
      assert.deepEqual(await store.getJob(j.request_id), j);
    });

    it('jobs: list newest first per user with total; by status oldest first', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const j = job(bob.id, { name: `b${i}` });
        ids.push(j.request_id);
        await store.insertJob(j);
      }
      const { jobs, total } = await store.listJobs(bob.id, 0, 3);
      assert.equal(total, 5);
      assert.deepEqual(jobs.map((j) => j.request_id), ids.slice(2).reverse());
      const p2 = await store.listJobs(bob.id, 3, 3);
      assert.deepEqual(p2.jobs.map((j) => j.request_id), ids.slice(0, 2).reverse());
      const pending = await store.listJobsByStatus(['pending']);
      assert.ok(pending.length >= 5);
      assert.equal((await store.listJobs(alice.id, 0, 100)).jobs.some((j) => j.user_id !== alice.id), false);
    });

    it('jobs: find by id, name, workspace; live before newest; never another user', async () => {
      const old = job(alice.id, { name: 'w', workspace_id: 'ws', status: 'running' });
      const newer = job(alice.id, { name: 'w', workspace_id: 'ws', status: 'completed' });
      await store.insertJob(old);
      await store.insertJob(newer);
      assert.equal((await store.findJobForUser(alice.id, 'w'))?.request_id, old.request_id, 'running beats newer completed');
      assert.equal((await store.findJobForUser(alice.id, 'ws'))?.request_id, old.request_id);
      await store.updateJob(old.request_id, { status: 'error' });
      assert.equal((await store.findJobForUser(alice.id, 'w'))?.request_id, newer.request_id, 'else the newest');
      assert.equal(await store.findJobForUser(bob.id, 'w'), undefined);
      assert.equal(await store.findJobForUser(bob.id, old.request_id), undefined);
      assert.equal(await store.findJobForUser(alice.id, "' OR 1=1 --"), undefined);
    });

    it('jobs: compare-and-set updates', async () => {
      const j = job(alice.id);
      await store.insertJob(j);
      assert.equal(await store.updateJob(j.request_id, { status: 'running', vm_id: 'vm1' }, ['pending']), true);
      assert.equal(await store.updateJob(j.request_id, { status: 'running' }, ['pending']), false);
      assert.equal(await store.updateJob(j.request_id, { status: 'completed', exit_code: 0, script_duration_ms: 12, no_sleep: true }, ['running']), true);
      const got = await store.getJob(j.request_id);
      assert.equal(got?.status, 'completed');
      assert.equal(got?.exit_code, 0);
      assert.equal(got?.vm_id, 'vm1');
      assert.equal(got?.no_sleep, true);
      const total = await store.countJobs();
      assert.ok(total >= 9);
      assert.equal(await store.countUserJobs(alice.id, ['completed']), (await store.listJobs(alice.id, 0, 1000)).jobs.filter((x) => x.status === 'completed').length);
      assert.equal(await store.countUserJobs(alice.id, []), 0);
    });

    it('logs: batched append, ordered reads, after, max seq, unicode and big lines', async () => {
      const j = job(alice.id);
      await store.insertJob(j);
      const lines = Array.from({ length: 1203 }, (_, i) => ({
        job_id: j.request_id, seq: i + 1, timestamp: new Date().toISOString(), stream: (i % 2 ? 'stderr' : 'stdout') as 'stdout' | 'stderr' | 'system', message: `line ${i} ✓ 名前`,
      }));
      lines.push({ job_id: j.request_id, seq: 1204, timestamp: new Date().toISOString(), stream: 'system', message: 'x'.repeat(100_000) });
      await store.appendLogs(lines);
      assert.equal(await store.maxLogSeq(j.request_id), 1204);
      const got = await store.getLogs(j.request_id, 0, 10_000);
      assert.equal(got.length, 1204);
      assert.deepEqual(got[5], lines[5]);
      assert.equal(got.at(-1)!.message.length, 100_000);
      assert.deepEqual((await store.getLogs(j.request_id, 1200, 2)).map((l) => l.seq), [1201, 1202]);
      assert.equal(await store.maxLogSeq('nope'), 0);
      await assert.rejects(store.appendLogs([lines[0]!]), 'duplicate seq is rejected');
    });

    it('JobLogs: numbering, batching, reads that merge buffered lines, followers', async () => {
      const j = job(alice.id);
      await store.insertJob(j);
      const logs = new JobLogs(store, silentLogger(), { flushIntervalMs: 10_000, flushLines: 1_000_000 });
      await logs.open(j.request_id);
      const seen: number[] = [];
      const unsub = logs.subscribe(j.request_id, (e) => e.type === 'log' && seen.push(e.line.seq));
      for (let i = 0; i < 100; i++) logs.append(j.request_id, 'stdout', `l${i}`);
      assert.equal(await store.maxLogSeq(j.request_id), 0, 'not written yet');
      assert.equal((await logs.read(j.request_id, 0, 1000)).length, 100, 'buffered lines are readable');
      await logs.flush();
      assert.equal(await store.maxLogSeq(j.request_id), 100);
      assert.deepEqual((await logs.read(j.request_id, 98, 10)).map((l) => l.seq), [99, 100]);
      assert.equal(seen.length, 100);
      unsub();
      assert.equal(logs.followerCount(), 0);
    });

    it('stores NUL-free hostile text as is', async () => {
      const name = "x'); DROP TABLE jobs; -- 🙂\u202e";
      const j = job(alice.id, { name, script: 'echo "$(cat /etc/passwd)"\n\\x00' });
      await store.insertJob(j);
      assert.equal((await store.findJobForUser(alice.id, name))?.script, j.script);
      const r = await sql<{ n: number }>`select count(*) as n from jobs`.execute(opened.db);
      assert.ok(Number(r.rows[0]!.n) > 0);
    });
  });
}

let sqliteDir: string;
conformance(
  'SQLite',
  async () => {
    sqliteDir = await mkdtemp(join(tmpdir(), 'mags-store-'));
    return openDatabase({ sqlitePath: join(sqliteDir, 'mags.db') });
  },
  async () => {
    if (sqliteDir) await rm(sqliteDir, { recursive: true, force: true });
  },
);

let pg: TestPostgres | undefined;
conformance(
  'PostgreSQL 15',
  async () => {
    pg = await startPostgres();
    return openDatabase({ url: pg.url, sqlitePath: '' });
  },
  async () => {
    await pg?.stop();
  },
);
