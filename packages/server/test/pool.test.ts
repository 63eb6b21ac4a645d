/**
 * The warm pool on the fake runtime driver (no root): filling, warm and cold hand-outs, limits,
 * refill concurrency, stop. The drivers themselves pass the runtime conformance suite.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { SandboxPool } from '../src/runtime/driver.js';
import { createPool } from '../src/scheduler/pool.js';
import { run, SMALL, testLog } from './conformance/runtime.js';
import { FakeRuntimeDriver, type FakeSandbox } from './helpers/fake-runtime.js';

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('warm pool', { timeout: 60_000 }, () => {
  let driver: FakeRuntimeDriver;
  let pool: SandboxPool | undefined;

  before(async () => {
    driver = new FakeRuntimeDriver();
    await driver.init();
  });
  after(async () => {
    try {
      await pool?.stop();
      await driver.shutdown();
    } finally {
      await rm(driver.dataDir, { recursive: true, force: true });
    }
  });

  it('fills to the minimum, hands out warm sandboxes with the job limits, refills, reports status', async () => {
    pool = createPool(driver, { minSize: 2, maxSize: 4, defaultLimits: SMALL, log: testLog });
    assert.deepEqual(pool.status(), { idle_vms: 0, busy_vms: 0, total_vms: 0, min_pool_size: 2, max_pool_size: 4 });
    pool.start();
    await until('2 idle sandboxes', () => pool!.status().idle_vms === 2);

    const started = performance.now();
    const { sandbox, warm } = await pool.acquire({ limits: { ...SMALL, memoryMb: 300, pids: 333 }, network: true });
    const acquireMs = performance.now() - started;
    assert.equal(warm, true);
    assert.ok(acquireMs < 50, `warm acquire took ${acquireMs.toFixed(1)} ms`);
    assert.equal(pool.status().busy_vms, 1);
    assert.deepEqual(sandbox.spec.limits, { ...SMALL, memoryMb: 300, pids: 333 }, 'the pool applied the job limits');
    assert.deepEqual((await run(sandbox, 'echo warm')).stdout, ['warm']);

    await until('the pool to refill', () => pool!.status().idle_vms === 2);
    assert.deepEqual(pool.status(), { idle_vms: 2, busy_vms: 1, total_vms: 3, min_pool_size: 2, max_pool_size: 4 });

    await pool.release(sandbox);
    assert.deepEqual(driver.leftovers(sandbox.id, sandbox as FakeSandbox), [], 'released sandboxes are destroyed, never reused');
    assert.ok((sandbox as FakeSandbox).destroyed);
    assert.equal(pool.status().busy_vms, 0);
  });

  it('acquire never waits for a refill: an empty pool creates cold', async () => {
    await until('2 idle sandboxes', () => pool!.status().idle_vms === 2);
    // Called together, so no refill can land in between.
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => pool!.acquire({ limits: SMALL })));
    assert.deepEqual([a.warm, b.warm, c.warm], [true, true, false]);
    assert.deepEqual((await run(c.sandbox, 'echo cold')).stdout, ['cold']);
    await Promise.all([a, b, c].map((x) => pool!.release(x.sandbox)));
  });

  it('a different disk size, no network or a workspace layer is created cold', async () => {
    await until('2 idle sandboxes', () => pool!.status().idle_vms === 2);
    const disk = await pool!.acquire({ limits: { ...SMALL, diskGb: 2 } });
    const offline = await pool!.acquire({ limits: SMALL, network: false });
    assert.deepEqual([disk.warm, offline.warm], [false, false]);
    assert.equal(pool!.status().idle_vms, 2);
    await pool!.release(disk.sandbox);
    await pool!.release(offline.sandbox);
  });

  it('stop destroys the idle sandboxes', async () => {
    await until('2 idle sandboxes', () => pool!.status().idle_vms === 2);
    await pool!.stop();
    assert.equal(pool!.status().idle_vms, 0);
    assert.equal(driver.list().length, 0);
    await assert.rejects(pool!.acquire({ limits: SMALL }), /stopped/);
  });
});

/** Pool bookkeeping on a driver double: how many creations run at once and how far it fills. */
describe('warm pool refill concurrency', () => {
  function fakeDriver(createMs: number) {
    const driver = new FakeRuntimeDriver({ createDelayMs: createMs });
    return { driver, state: driver.stats };
  }
  const drivers: FakeRuntimeDriver[] = [];
  after(async () => {
    for (const d of drivers) await rm(d.dataDir, { recursive: true, force: true });
  });

  it('refills with up to refillConcurrency creations at once, never past the minimum', async () => {
    const { driver, state } = fakeDriver(40);
    drivers.push(driver);
    const pool = createPool(driver, { minSize: 5, maxSize: 10, defaultLimits: SMALL, log: testLog, refillConcurrency: 3 });
    try {
      pool.start();
      await until('5 idle sandboxes', () => pool.status().idle_vms === 5, 5000);
      assert.equal(state.maxInFlight, 3);
      assert.equal(state.created, 5, 'no creation beyond the minimum');
      // A burst takes all five; the refill runs three at a time again.
      const taken = await Promise.all([1, 2, 3, 4, 5].map(() => pool.acquire({ limits: SMALL })));
      assert.ok(taken.every((x) => x.warm));
      await until('the refill', () => pool.status().idle_vms === 5, 5000);
      assert.equal(state.maxInFlight, 3);
      assert.deepEqual(pool.status(), { idle_vms: 5, busy_vms: 5, total_vms: 10, min_pool_size: 5, max_pool_size: 10 });
      await Promise.all(taken.map((x) => pool.release(x.sandbox)));
      assert.equal(state.destroyed, 5);
    } finally {
      await pool.stop();
    }
    assert.equal(state.destroyed, 10, 'stop destroys the idle sandboxes');
  });

  it('a refill stays within the maximum while sandboxes are busy', async () => {
    const { driver, state } = fakeDriver(10);
    drivers.push(driver);
    const pool = createPool(driver, { minSize: 4, maxSize: 6, defaultLimits: SMALL, log: testLog, refillConcurrency: 4 });
    try {
      pool.start();
      await until('4 idle sandboxes', () => pool.status().idle_vms === 4, 5000);
      const taken = await Promise.all([1, 2, 3, 4].map(() => pool.acquire({ limits: SMALL })));
      await until('the refill to stop at the maximum', () => state.inFlight === 0 && pool.status().total_vms === 6, 5000);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(pool.status().idle_vms, 2);
      assert.equal(state.created, 6);
      await Promise.all(taken.map((x) => pool.release(x.sandbox)));
      await until('the refill after release', () => pool.status().idle_vms === 4, 5000);
    } finally {
      await pool.stop();
    }
  });

  it('runs one command in each new pooled sandbox before pooling it; one that cannot is destroyed, never handed out', async () => {
    const d = new FakeRuntimeDriver();
    await d.init();
    const scripts: string[] = [];
    const made: FakeSandbox[] = [];
    let failing = 1;
    const create = d.create.bind(d);
    d.create = async (spec) => {
      const sb = (await create(spec)) as FakeSandbox;
      made.push(sb);
      const exec = sb.exec.bind(sb);
      sb.exec = async (req, onOutput) => {
        scripts.push(req.script);
        if (failing-- > 0) return { exitCode: null, reason: 'sandbox_failed', message: 'agent gone', durationMs: 0 };
        return exec(req, onOutput);
      };
      return sb;
    };
    const p = createPool(d, { minSize: 1, maxSize: 2, defaultLimits: SMALL, log: testLog });
    try {
      p.start();
      await until('1 idle sandbox', () => p.status().idle_vms === 1);
      assert.deepEqual(scripts, ['true', 'true'], 'each new sandbox ran `true` once before it was pooled');
      assert.equal(made.length, 2);
      assert.ok(made[0]!.destroyed, 'the sandbox that failed its first command was destroyed');
      const { sandbox, warm } = await p.acquire({ limits: SMALL, network: true });
      assert.equal(warm, true);
      assert.equal(sandbox, made[1], 'the healthy sandbox is the one handed out');
      assert.deepEqual((await run(sandbox, 'echo job')).stdout, ['job']);
      await p.release(sandbox);
    } finally {
      await p.stop();
      await d.shutdown();
      await rm(d.dataDir, { recursive: true, force: true });
    }
  });
});
