#!/usr/bin/env node
/**
 * Cron and webhook benchmark, each figure side by side with a baseline measured in the same run:
 *   - firing delay (scheduled time -> job running) over N firings: 10 schedules due at the same
 *     second, and one schedule alone (N/4 firings), with the test-only seconds field
 *     (`* * * * * *`, the same engine and timer as 5-field schedules) on a control
 *     plane built by compose.ts (real SQLite, the host-process sandbox pool of the tests, so sandbox
 *     start-up, which bench/runtime.mjs measures, is not part of it).
 *     Baseline: a job submitted directly (created_at -> running) through the same jobs service.
 *   - webhook delivery delay (job end -> receiver got the signed request) over N jobs, to a
 *     loopback receiver. Baseline: one plain HTTP POST of the same size to the same receiver.
 *   - CPU of the idle process with 1000 enabled schedules vs with none, over --idle-seconds.
 * Needs a built tree (`npm run build`). Prints a table and writes bench/cron.results.json.
 *
 *   node bench/cron.mjs [--firings 100] [--idle-seconds 60]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, numberOption, quantile, REPO, stats as baseStats } from './lib.mjs';

const dist = join(REPO, 'packages/server/dist');
const { composeControlPlane } = await import(join(dist, 'src/compose.js'));
const { openStores } = await import(join(dist, 'src/storage/stores.js'));
const { silentLogger } = await import(join(dist, 'src/logger.js'));
const { createBlobStore } = await import(join(dist, 'src/storage/blobs/index.js'));
const { LocalLayers } = await import(join(dist, 'src/workspaces/local-layers.js'));
const { FakePool } = await import(join(dist, 'test/helpers/fake-runtime.js'));

const FIRINGS = numberOption('--firings', 100);
const IDLE_SECONDS = numberOption('--idle-seconds', 60);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** n, p50, p95, p99, min, max of samples (ms). */
function stats(samples) {
  return { ...baseStats(samples), p99: quantile([...samples].sort((x, y) => x - y), 0.99) };
}

async function plane(dir) {
  const stores = await openStores({ sqlitePath: join(dir, 'mags.db') });
  const pool = new FakePool();
  const p = await composeControlPlane({
    stores,
    pool,
    log: silentLogger(),
    blobs: await createBlobStore({ driver: 'fs', root: join(dir, 'blobs') }),
    workspaces: { layers: new LocalLayers(join(dir, 'ws')), imageVersion: () => 'bench' },
    settings: { jobTimeoutSeconds: 60, maxOutputBytes: 1e6, maxConcurrentJobs: 32, maxRunningJobsPerUser: 32, cronAllowSeconds: true, webhookAllowPrivate: true },
  });
  const user = { id: 'bench', name: 'bench', admin: false, created_at: new Date().toISOString() };
  await stores.users.createUser(user);
  await p.start();
  return {
    p,
    stores,
    user,
    async close() {
      await p.close();
      await stores.close();
      await pool.stop();
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'mags-bench-cron-'));
const received = [];
const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    received.push({ at: Date.now(), id: req.headers['webhook-id'] });
    res.writeHead(204).end();
  });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
const results = {};
try {
  // ---- firing delay ------------------------------------------------------------------------
  const a = await plane(join(dir, 'a'));
  /** Firing delays of `count` every-second schedules until `firings` jobs ran. */
  const fire = async (count, firings, prefix) => {
    const schedules = [];
    for (let i = 0; i < count; i++) schedules.push(await a.p.cron.create(a.user, { name: `${prefix}${i}`, cron_expression: '* * * * * *', script: 'true' }));
    const started = Date.now();
    for (;;) {
      let n = 0;
      for (const s of schedules) n += (await a.stores.cron.listRuns(s.id, 1000)).filter((r) => r.job_id).length;
      if (n >= firings || Date.now() - started > (firings / count + 10) * 1000) break;
      await sleep(500);
    }
    for (const s of schedules) await a.p.cron.update(a.user, s.id, { enabled: false });
    await sleep(1500);
    const delays = [];
    for (const s of schedules) {
      for (const r of await a.stores.cron.listRuns(s.id, 1000)) {
        if (!r.job_id) continue;
        const job = await a.stores.jobs.getJob(r.job_id);
        if (job?.started_at) delays.push(Date.parse(job.started_at) - Date.parse(r.scheduled_for));
      }
    }
    return delays;
  };
  const firing = await fire(10, FIRINGS, 'burst');
  const single = await fire(1, Math.max(10, Math.round(FIRINGS / 4)), 'single');
  const direct = [];
  for (let i = 0; i < Math.min(FIRINGS, firing.length); i++) {
    const job = await a.p.jobs.submit(a.user, { script: 'true', type: 'inline' }, 1);
    for (let j = 0; j < 200; j++) {
      const fresh = await a.stores.jobs.getJob(job.request_id);
      if (fresh.started_at) {
        direct.push(Date.parse(fresh.started_at) - Date.parse(fresh.created_at));
        break;
      }
      await sleep(2);
    }
  }
  results.firing = { cron: stats(firing), cron_single: stats(single), direct_submit: stats(direct) };

  // ---- webhook delivery delay --------------------------------------------------------------
  for (let i = 0; i < 100 && (await a.stores.jobs.countUserJobs('bench', ['pending', 'running'])) > 0; i++) await sleep(100);
  await a.p.webhooks.createEndpoint(a.user, { url: hookUrl, events: ['job.completed'] });
  // One job at a time: the figure is the dispatcher's delay, not a queue of simultaneous jobs.
  const webhook = [];
  const queued = [];
  for (let i = 0; i < FIRINGS; i++) {
    const job = await a.p.jobs.submit(a.user, { script: 'true', type: 'inline' }, 1);
    let hit;
    for (let j = 0; j < 5000 && !hit; j++) {
      for (const r of received.splice(0)) {
        const d = await a.stores.webhooks.getDelivery(r.id);
        if (d?.job_id === job.request_id) hit = { r, d };
      }
      if (!hit) await sleep(1);
    }
    const done = await a.stores.jobs.getJob(job.request_id);
    if (hit) {
      webhook.push(hit.r.at - Date.parse(done.completed_at));
      queued.push(hit.r.at - Date.parse(hit.d.created_at));
    }
  }
  const body = JSON.stringify({ type: 'job.completed', data: { pad: 'x'.repeat(2000) } });
  const plain = [];
  for (let i = 0; i < FIRINGS; i++) {
    const t = performance.now();
    await fetch(hookUrl, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    plain.push(performance.now() - t);
  }
  results.webhook = { delivery: stats(webhook), stored_to_received: stats(queued), plain_post: stats(plain) };
  await a.close();

  // ---- idle CPU with 1000 schedules --------------------------------------------------------
  const idle = async (count) => {
    const b = await plane(join(dir, `idle${count}`));
    for (let i = 0; i < count; i++) await b.p.cron.create(b.user, { name: `h${i}`, cron_expression: '0 0 1 1 *', script: 'true' });
    await sleep(2000);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(IDLE_SECONDS * 1000);
    const cpu = process.cpuUsage(cpu0);
    const wall = performance.now() - t0;
    await b.close();
    return (100 * (cpu.user + cpu.system)) / 1000 / wall;
  };
  results.idle_cpu_percent = { schedules_0: await idle(0), schedules_1000: await idle(1000), seconds: IDLE_SECONDS };
} finally {
  receiver.closeAllConnections();
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
}

const row = (name, s) => `| ${name} | ${s.n} | ${fmt(s.p50)} | ${fmt(s.p95)} | ${fmt(s.p99)} | ${fmt(s.max)} |`;
console.log('| measurement | n | p50 ms | p95 ms | p99 ms | max ms |');
console.log('|---|---|---|---|---|---|');
console.log(row('cron firing delay, 10 schedules due each second', results.firing.cron));
console.log(row('cron firing delay, 1 schedule', results.firing.cron_single));
console.log(row('baseline: direct submit (created -> running)', results.firing.direct_submit));
console.log(row('webhook delay (job end -> receiver)', results.webhook.delivery));
console.log(row('  of which: delivery stored -> receiver', results.webhook.stored_to_received));
console.log(row('baseline: plain HTTP POST to the receiver', results.webhook.plain_post));
console.log(`idle CPU over ${IDLE_SECONDS} s: ${results.idle_cpu_percent.schedules_1000.toFixed(3)}% with 1000 schedules, ${results.idle_cpu_percent.schedules_0.toFixed(3)}% with none (of one core)`);
writeFileSync(join(REPO, 'bench/cron.results.json'), JSON.stringify({ date: new Date().toISOString(), ...results }, null, 2) + '\n');
