#!/usr/bin/env node
/**
 * Persistent sandboxes: how long attach() takes, side by side in one run, on the real container
 * runtime (root, the base image in MAGS_IMAGE_DIR) with the control plane in-process:
 *   - attach to a running sandbox (the warm path, the baseline)
 *   - attach to a frozen sandbox (thaw through the cgroup freezer)
 *   - attach to a sleeping job (new sandbox on the workspace, startup_command started, status stored)
 *   - first start of a persistent job on a workspace: submit -> `running` with vm_id (what a wake replaces)
 * Prints medians and p95 and writes bench/persistent.results.json.
 *
 *   node bench/persistent.mjs [--runs 15]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, numberOption, REPO, stats } from './lib.mjs';

const dist = join(REPO, 'packages/server/dist/src');
const { composeControlPlane } = await import(join(dist, 'compose.js'));
const { silentLogger } = await import(join(dist, 'logger.js'));
const { createContainerDriver } = await import(join(dist, 'runtime/drivers/container/driver.js'));
const { instancePrefix } = await import(join(dist, 'host/instance.js'));
const { ID_BASE } = await import(join(dist, 'runtime/image.js'));
const { createPool } = await import(join(dist, 'scheduler/pool.js'));
const { DEFAULT_PIDS_LIMIT } = await import(join(dist, 'scheduler/scheduler.js'));
const { createBlobStore } = await import(join(dist, 'storage/blobs/index.js'));
const { openStores } = await import(join(dist, 'storage/stores.js'));
const { LocalLayers } = await import(join(dist, 'workspaces/local-layers.js'));
const { WorkspaceSync } = await import(join(dist, 'workspaces/sync/index.js'));

const RUNS = numberOption('--runs', 15);
const imageDir = process.env.MAGS_IMAGE_DIR ?? '/var/cache/mags/images';
const dataDir = mkdtempSync(join(tmpdir(), 'mags-bench-persist-'));
const log = silentLogger();
const driver = createContainerDriver({ dataDir, imageDir, instance: instancePrefix(dataDir), log });
await driver.init();
const stores = await openStores({ sqlitePath: join(dataDir, 'mags.db') });
const blobs = await createBlobStore({ driver: 'fs', root: join(dataDir, 'blobs') });
const layers = new LocalLayers(join(dataDir, 'workspaces'));
const syncer = new WorkspaceSync({ blobs, log, idShift: ID_BASE, cacheDir: join(dataDir, 'sync-cache') });
const pool = createPool(driver, { minSize: 0, maxSize: 0, defaultLimits: { vcpus: 1, memoryMb: 512, diskGb: 2, pids: DEFAULT_PIDS_LIMIT }, log });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, what, ms = 60_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A control plane with these idle windows on the shared driver, stores and layers. */
async function plane(freezeAfterSeconds, sleepAfterSeconds) {
  const p = await composeControlPlane({
    stores,
    pool,
    log,
    blobs,
    workspaces: { layers, syncer, imageVersion: () => 'bench', syncIntervalSeconds: 0 },
    settings: { jobTimeoutSeconds: 600, maxOutputBytes: 1 << 20, maxConcurrentJobs: 8, freezeAfterSeconds, sleepAfterSeconds },
  });
  await p.users.bootstrapAdmin();
  await p.start();
  return { p };
}

const results = {};
let user;
try {
  // 1. Warm attach and thaw: freeze after 50 ms idle, never sleep.
  {
    const { p } = await plane(0.05, 0);
    user = await stores.users.getUserByName('admin');
    const firstStart = [];
    const job = await p.jobs.submit(user, { script: 'true', type: 'inline', persistent: true, workspace_id: 'bench-thaw' }, 1);
    await until(async () => (await stores.jobs.getJob(job.request_id)).exit_code === 0, 'script');
    const warm = [];
    const thaw = [];
    for (let i = 0; i < RUNS; i++) {
      await until(() => p.live.state(job.request_id) === 'frozen', 'frozen');
      let t = performance.now();
      const a = await p.live.attach(job, 'proxy');
      thaw.push(performance.now() - t);
      if (a.woke !== 'thawed') throw new Error(`expected a thaw, got ${a.woke}`);
      t = performance.now();
      const b = await p.live.attach(job, 'proxy');
      warm.push(performance.now() - t);
      b.release();
      a.release();
    }
    await p.jobs.stop(user, job.request_id);
    // First starts of persistent jobs on a fresh workspace each (submit -> running with vm_id).
    for (let i = 0; i < Math.min(RUNS, 10); i++) {
      const t = performance.now();
      const j = await p.jobs.submit(user, { script: 'true', type: 'inline', persistent: true, workspace_id: `bench-first-${i}` }, 1);
      await until(async () => (await stores.jobs.getJob(j.request_id)).vm_id !== null, 'running');
      firstStart.push(performance.now() - t);
      await p.jobs.stop(user, j.request_id);
    }
    await p.close();
    results['attach, running (baseline)'] = stats(warm);
    results['attach, frozen (thaw)'] = stats(thaw);
    results['first start: submit -> running + vm_id'] = stats(firstStart);
  }
  // 2. Wake from sleep: never freeze, sleep after 100 ms idle.
  {
    const { p } = await plane(0, 0.1);
    const job = await p.jobs.submit(user, { script: 'echo data > /root/app.txt', type: 'inline', persistent: true, workspace_id: 'bench-wake', startup_command: 'true' }, 1);
    await until(async () => (await stores.jobs.getJob(job.request_id)).exit_code === 0, 'script');
    const wake = [];
    for (let i = 0; i < RUNS; i++) {
      await until(async () => (await stores.jobs.getJob(job.request_id)).status === 'sleeping', 'sleeping');
      const t = performance.now();
      const a = await p.live.attach(job, 'proxy');
      wake.push(performance.now() - t);
      if (a.woke !== 'started') throw new Error(`expected a wake, got ${a.woke}`);
      a.release();
    }
    await p.jobs.stop(user, job.request_id);
    await p.close();
    results['attach, sleeping (wake: new sandbox + startup_command)'] = stats(wake);
  }
} finally {
  await pool.stop();
  await driver.shutdown();
  await layers.shutdown();
  await blobs.close();
  await stores.close();
  rmSync(dataDir, { recursive: true, force: true });
}

const rows = Object.entries(results);
console.log(`persistent sandboxes, ${RUNS} runs, load ${loadavg()[0].toFixed(2)}`);
console.log('case'.padEnd(58) + 'p50 ms'.padStart(10) + 'p95 ms'.padStart(10));
for (const [name, s] of rows) console.log(name.padEnd(58) + fmt(s.p50).padStart(10) + fmt(s.p95).padStart(10));
writeFileSync(join(REPO, 'bench', 'persistent.results.json'), JSON.stringify({ at: new Date().toISOString(), runs: RUNS, results }, null, 2) + '\n');
