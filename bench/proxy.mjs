#!/usr/bin/env node
/**
 * Public-URL proxy benchmark, side by side in one run on one real server (real sandboxes):
 *   - request latency through the proxy vs direct to the sandbox's bridge address (keep-alive on
 *     both; p50, p95; the overhead is the difference of the medians; target p50 overhead <= 1 ms)
 *   - requests/s through the proxy vs direct (32 concurrent keep-alive clients)
 *   - a request to a frozen sandbox -> first byte, next to the warm path
 *   - a request to a sleeping (stopped) sandbox -> first byte, and the same minus the app's own
 *     start (python3 from exec to listening, measured inside the sandbox)
 * The app is the python3 app of the proxy end-to-end test. Needs root, a built tree and the image.
 *
 *   node bench/proxy.mjs [--requests 2000] [--seconds 5] [--wakes 5]
 */
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmt, numberOption, REPO, startServer, stats } from './lib.mjs';

const REQUESTS = numberOption('--requests', 2000);
const SECONDS = numberOption('--seconds', 5);
const WAKES = numberOption('--wakes', 5);
const dist = join(REPO, 'packages/server/dist');
const { sandboxAppScript } = await import(join(dist, 'test/helpers/sandbox-app.js'));
const { instancePrefix } = await import(join(dist, 'src/host/instance.js'));

const server = await startServer({ MAGS_POOL_MIN_SIZE: '0', MAGS_FREEZE_AFTER_SECONDS: '1', MAGS_SLEEP_AFTER_SECONDS: '5' });
const headers = { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' };
const call = async (method, path, body) => {
  const res = await fetch(server.url + path, { method, headers, body: body && JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One GET; resolves with ms to the first byte and ms to the end. */
function timedGet(opts) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request({ ...opts, method: 'GET' }, (res) => {
      let first;
      res.once('data', () => (first = performance.now() - t0));
      res.on('data', () => undefined);
      res.on('end', () => (res.statusCode === 200 ? resolve({ first, total: performance.now() - t0 }) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

async function throughput(opts, agent) {
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (performance.now() < end) {
      await timedGet({ ...opts, agent });
      n++;
    }
  }));
  return n / SECONDS;
}

try {
  const startup = 'date +%s%N > /root/.start_ns; exec python3 /root/app.py 8080';
  const id = (await call('POST', '/api/v2/mags-jobs', { type: 'inline', script: sandboxAppScript(8080), persistent: true, name: 'bench', workspace_id: 'bench-proxy', startup_command: startup })).request_id;
  for (let i = 0; ; i++) {
    const s = await call('GET', `/api/v2/mags-jobs/${id}/status`);
    if (s.status === 'running' && s.vm_id) break;
    if (i > 600) throw new Error(`job did not start: ${JSON.stringify(s)}`);
    await sleep(100);
  }
  const access = await call('POST', `/api/v2/mags-jobs/${id}/access`, { port: 8080 });
  const host = new URL(access.url).host;
  const viaProxy = { host: '127.0.0.1', port: server.proxyPort, path: '/index.html', headers: { host } };
  for (let i = 0; ; i++) {
    try {
      await timedGet({ ...viaProxy, agent: false });
      break;
    } catch (err) {
      if (i > 300) throw err;
      await sleep(100);
    }
  }
  const vmId = (await call('GET', `/api/v2/mags-jobs/${id}/status`)).vm_id;
  const instance = instancePrefix(server.dataDir);
  const ip = JSON.parse(execFileSync('ip', ['-j', '-n', `${instance}-${vmId}`, '-4', 'addr', 'show', 'eth0'], { encoding: 'utf8' }))[0].addr_info[0].local;
  const direct = { host: ip, port: 8080, path: '/index.html' };

  // Latency: alternate proxied and direct requests on their own keep-alive connection.
  const pa = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const da = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const viaTimes = [];
  const directTimes = [];
  for (let i = 0; i < REQUESTS + 100; i++) {
    const v = await timedGet({ ...viaProxy, agent: pa });
    const d = await timedGet({ ...direct, agent: da });
    if (i >= 100) {
      viaTimes.push(v.total);
      directTimes.push(d.total);
    }
  }
  const via = stats(viaTimes);
  const dir = stats(directTimes);
  const ca = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const cd = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const rpsDirect = await throughput(direct, cd);
  const rpsProxy = await throughput(viaProxy, ca);
  for (const a of [pa, da, ca, cd]) a.destroy();

  // Frozen: wait until the kernel reports the sandbox's cgroup frozen, then one request.
  const frozenFile = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'].map((r) => join(r, instance, vmId, 'cgroup.events')).find((f) => existsSync(f));
  const v1 = join('/sys/fs/cgroup/freezer', instance, vmId, 'freezer.state');
  const isFrozen = () => (existsSync(v1) ? readFileSync(v1, 'utf8').trim() === 'FROZEN' : frozenFile ? /^frozen 1$/m.test(readFileSync(frozenFile, 'utf8')) : false);
  const frozenFirst = [];
  const warmFirst = [];
  for (let i = 0; i < WAKES * 2; i++) {
    const warm = await timedGet({ ...viaProxy, agent: false });
    warmFirst.push(warm.first);
    const deadline = Date.now() + 10_000;
    while (!isFrozen() && Date.now() < deadline) await sleep(20);
    if (!isFrozen()) throw new Error('the sandbox was not frozen within 10 s');
    frozenFirst.push((await timedGet({ ...viaProxy, agent: false })).first);
  }

  // Sleeping: wait for status sleeping, then one request; the app's own start is read from /timing.
  const sleepingFirst = [];
  const appStart = [];
  for (let i = 0; i < WAKES; i++) {
    for (let j = 0; (await call('GET', `/api/v2/mags-jobs/${id}/status`)).status !== 'sleeping'; j++) {
      if (j > 600) throw new Error('the job did not go to sleep');
      await sleep(100);
    }
    sleepingFirst.push((await timedGet({ ...viaProxy, agent: false })).first);
    const timing = JSON.parse(await new Promise((resolve, reject) => {
      http.get({ ...viaProxy, path: '/timing', agent: false }, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve(b));
      }).on('error', reject);
    }));
    appStart.push((timing.listen_ns - timing.start_ns) / 1e6);
  }
  const minusApp = sleepingFirst.map((ms, i) => ms - appStart[i]);

  const rows = [
    ['direct to the sandbox (keep-alive)', stats(directTimes)],
    ['through the proxy (keep-alive)', stats(viaTimes)],
    ['warm request, first byte (new connection)', stats(warmFirst)],
    ['frozen sandbox -> first byte', stats(frozenFirst)],
    ['sleeping sandbox -> first byte', stats(sleepingFirst)],
    ['  the app\'s own start (python3 exec -> listening)', stats(appStart)],
    ['sleeping -> first byte minus the app\'s start', stats(minusApp)],
  ];
  console.log(`\nPublic-URL proxy (node ${process.version}, ${REQUESTS} requests per latency case, ${WAKES * 2} freezes, ${WAKES} sleeps)`);
  console.log(`${'case'.padEnd(50)} ${'n'.padStart(5)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)}`);
  for (const [name, s] of rows) console.log(`${name.padEnd(50)} ${String(s.n).padStart(5)} ${fmt(s.p50).padStart(8)} ${fmt(s.p95).padStart(8)}`);
  console.log(`proxy overhead (p50 via - p50 direct): ${fmt(via.p50 - dir.p50)} ms; p95: ${fmt(via.p95 - dir.p95)} ms`);
  console.log(`frozen over warm (p50): +${fmt(stats(frozenFirst).p50 - stats(warmFirst).p50)} ms`);
  console.log(`requests/s, 32 keep-alive clients, ${SECONDS} s: direct ${Math.round(rpsDirect)}, through the proxy ${Math.round(rpsProxy)} (${Math.round((rpsProxy / rpsDirect) * 100)}%)`);
  await call('POST', `/api/v1/mags-jobs/${id}/stop`).catch(() => undefined);
} finally {
  await server.stop();
}
