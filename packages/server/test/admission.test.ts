/**
 * Admission control and the fair queue through the HTTP API (in-process app on the fake pool):
 * jobs asking for more than the host has are refused with a code naming the limit and the host
 * maximum; the sum over running jobs makes a job wait; one user's backlog does not hold up another
 * user's job; a per-user cap leaves slots to others.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Admission, type HostCapacity } from '../src/services/admission.js';
import { createHarness, type Harness } from './helpers/harness.js';

const HOST: HostCapacity = { memoryMb: 2048, vcpus: 2, freeDiskGb: () => 10.5 };
const STRICT = { memory: 1, cpu: 1, disk: 1 };

async function submit(h: Harness, token: string, body: Record<string, unknown>) {
  return h.app.inject({ method: 'POST', url: '/api/v2/mags-jobs', headers: { authorization: `Bearer ${token}` }, payload: { type: 'inline', ...body } });
}

async function submitOk(h: Harness, token: string, body: Record<string, unknown>): Promise<string> {
  const res = await submit(h, token, body);
  assert.equal(res.statusCode, 202, res.body);
  return (res.json() as { request_id: string }).request_id;
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('admission control', () => {
  it('refuses memory_mb, vcpus and disk_gb beyond the host with a code naming the limit and the maximum', async () => {
    const h = await createHarness({ admission: new Admission(HOST, STRICT) });
    try {
      const cases: Array<[Record<string, unknown>, string, RegExp]> = [
        [{ memory_mb: 65536 }, 'MEMORY_EXCEEDS_HOST', /memory_mb: 65536 .*\(2048 MiB\)/],
        [{ vcpus: 64 }, 'VCPUS_EXCEED_HOST', /vcpus: 64 .*\(2\)/],
        [{ disk_gb: 1024 }, 'DISK_EXCEEDS_HOST', /disk_gb: 1024 .*\(10 GB\)/],
        [{ vcpus: 2, memory_mb: 2048, disk_gb: 11 }, 'DISK_EXCEEDS_HOST', /\(10 GB\)/],
      ];
      for (const [limits, code, message] of cases) {
        const res = await submit(h, h.adminToken, { script: 'echo hi', ...limits });
        assert.equal(res.statusCode, 400, `${JSON.stringify(limits)}: ${res.body}`);
        const body = res.json() as { error: string; code: string; hint?: string };
        assert.equal(body.code, code);
        assert.match(body.error, message);
        assert.ok(body.hint, 'a hint says what to ask for');
      }
      assert.equal((await h.stores.jobs.listJobsByStatus(['pending', 'running', 'completed', 'error'])).length, 0, 'refused jobs are not stored');
      // Exactly the host's maximum is accepted and runs.
      const id = await submitOk(h, h.adminToken, { script: 'echo hi', memory_mb: 2048, vcpus: 2, disk_gb: 10 });
      assert.equal((await h.waitDone(h.adminToken, id)).status, 'completed');
    } finally {
      await h.close();
    }
  });

  it('a job whose resources do not fit beside the running jobs waits in the queue, then runs', async () => {
    const h = await createHarness({ admission: new Admission(HOST, STRICT), maxConcurrentJobs: 8 });
    try {
      const first = await submitOk(h, h.adminToken, { script: 'sleep 0.6', memory_mb: 1536, vcpus: 1 });
      await waitFor('the first job to run', async () => (await h.stores.jobs.getJob(first))?.status === 'running');
      const second = await submitOk(h, h.adminToken, { script: 'echo second', memory_mb: 1024, vcpus: 1 });
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await h.stores.jobs.getJob(second))?.status, 'pending', 'two jobs of 1536 + 1024 MiB on 2048 MiB do not run together');
      assert.deepEqual(h.scheduler.counts(), { running: 1, queued: 1 });
      assert.equal((await h.waitDone(h.adminToken, second)).status, 'completed');
      const a = (await h.stores.jobs.getJob(first))!;
      const b = (await h.stores.jobs.getJob(second))!;
      assert.ok(b.started_at! >= a.completed_at!, `second started ${b.started_at} before the first ended ${a.completed_at}`);
    } finally {
      await h.close();
    }
  });
});

describe('fair queue', () => {
  it("user B's job starts within a second while user A has 40 queued", async () => {
    const h = await createHarness({ maxConcurrentJobs: 2 });
    try {
      const alice = await h.makeUser('alice');
      const bob = await h.makeUser('bob');
      for (let i = 0; i < 42; i++) await submitOk(h, alice, { script: 'sleep 0.5' });
      await waitFor('alice to fill both slots', async () => h.scheduler.counts().running === 2);
      assert.ok(h.scheduler.counts().queued >= 36, `alice has ${h.scheduler.counts().queued} queued`);
      const submitted = Date.now();
      const id = await submitOk(h, bob, { script: 'echo bob' });
      const done = await h.waitDone(bob, id, 10_000);
      assert.equal(done.status, 'completed');
      const started = Date.parse((await h.stores.jobs.getJob(id))!.started_at!);
      // A slot frees within 0.5 s; FIFO would make bob wait for alice's backlog (~10 s).
      assert.ok(started - submitted < 1000, `bob's job started ${started - submitted} ms after submission`);
      assert.ok(h.scheduler.counts().queued >= 30, 'alice still has her backlog');
    } finally {
      await h.close();
    }
  });

  it('MAGS_MAX_RUNNING_JOBS_PER_USER caps one user and leaves slots to others', async () => {
    const h = await createHarness({ maxConcurrentJobs: 4, maxRunningJobsPerUser: 2 });
    try {
      const alice = await h.makeUser('alice');
      const bob = await h.makeUser('bob');
      for (let i = 0; i < 10; i++) await submitOk(h, alice, { script: 'sleep 30' });
      await waitFor('alice to run two jobs', async () => h.scheduler.counts().running === 2);
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(h.scheduler.counts(), { running: 2, queued: 8 }, 'alice never gets more than 2 of the 4 slots');
      const submitted = Date.now();
      const id = await submitOk(h, bob, { script: 'echo bob' });
      assert.equal((await h.waitDone(bob, id, 5000)).status, 'completed');
      assert.ok(Date.now() - submitted < 1000, `bob waited ${Date.now() - submitted} ms`);
    } finally {
      await h.close();
    }
  });
});
