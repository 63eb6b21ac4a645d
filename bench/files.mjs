#!/usr/bin/env node
// The files API on a real server: 100 MiB write (PUT) and read (GET) throughput through the API,
// beside the floor of the same bytes through a pipe on the host (`cat` of the file) and, when podman
// is installed, `podman cp` of the same file into and out of a container; then the small-file round
// trip (1 KiB PUT + GET, warm, keep-alive) and a listing, p50 and p95, beside a status call (an API
// call that reaches no sandbox) as the baseline of the same run.
//
//   node bench/files.mjs [--runs 5] [--small 200]
//
// Needs root, a built tree (npm run build) and the base image. Prints a table and writes
// bench/files.results.json; docs/benchmarks.md records a run.
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO, api, printTable, startServer, stats } from './lib.mjs';

const { values: opt } = parseArgs({ options: { runs: { type: 'string', default: '5' }, small: { type: 'string', default: '200' } } });
const RUNS = Number(opt.runs);
const SMALL = Number(opt.small);
const MiB = 1024 * 1024;
const SIZE = 100 * MiB;

const dir = mkdtempSync(join(tmpdir(), 'mags-bench-files-'));
const src = join(dir, 'src.bin');
writeFileSync(src, randomBytes(SIZE));
const server = await startServer({ MAGS_POOL_MIN_SIZE: '1', MAGS_FREEZE_AFTER_SECONDS: '0', MAGS_SLEEP_AFTER_SECONDS: '0' });
const client = api(server);
const auth = { authorization: `Bearer ${server.token}` };
const job = 'bench-files';

function curl(args) {
  const t0 = performance.now();
  const r = spawnSync('curl', ['-sS', '--fail-with-body', '-H', `authorization: Bearer ${server.token}`, ...args], { encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`curl ${args.join(' ')}: ${r.stdout} ${r.stderr}`);
  return ms;
}

function timed(fn, runs) {
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(fn());
  return stats(samples);
}

const mibps = (s) => `${((SIZE / MiB) / (s.p50 / 1000)).toFixed(0)} MiB/s at p50`;

try {
  await client.submit('true', { name: job, persistent: true });
  for (let i = 0; ; i++) {
    const st = await client.json(`/api/v1/mags-jobs/${job}/status`);
    if (st.status === 'running' && st.vm_id) break;
    if (i > 3000) throw new Error(`job did not come up: ${JSON.stringify(st)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const url = (p) => `${server.url}/api/v1/mags-jobs/${job}/files?path=${encodeURIComponent(p)}`;
  const rows = {};

  rows['100 MiB host cat (floor)'] = timed(() => {
    const t0 = performance.now();
    execFileSync('sh', ['-c', `cat ${src} > /dev/null`]);
    return performance.now() - t0;
  }, RUNS);
  rows['100 MiB write (PUT)'] = timed(() => curl(['-T', src, '-o', '/dev/null', url('/root/big.bin')]), RUNS);
  rows['100 MiB read (GET)'] = timed(() => curl(['-o', join(dir, 'back.bin'), url('/root/big.bin')]), RUNS);
  const same = createHash('sha256').update(await readAll(join(dir, 'back.bin'))).digest('hex') === createHash('sha256').update(await readAll(src)).digest('hex');
  if (!same) throw new Error('the file read back differs');

  if (spawnSync('podman', ['--version']).status === 0) {
    // podman cp into and out of a running container of the same base image (docker cp equivalent).
    const name = `mags-bench-files-${process.pid}`;
    execFileSync('podman', ['run', '-d', '--rm', '--name', name, 'docker.io/library/debian:bookworm-slim', 'sleep', '3600']);
    try {
      rows['100 MiB podman cp in'] = timed(() => { const t0 = performance.now(); execFileSync('podman', ['cp', src, `${name}:/root/big.bin`]); return performance.now() - t0; }, RUNS);
      rows['100 MiB podman cp out'] = timed(() => { const t0 = performance.now(); execFileSync('podman', ['cp', `${name}:/root/big.bin`, join(dir, 'p.bin')]); return performance.now() - t0; }, RUNS);
    } finally {
      spawnSync('podman', ['rm', '-f', name]);
    }
  }

  // Small files, warm: fetch with keep-alive from this process.
  const small = randomBytes(1024);
  const rt = [];
  const put = [];
  const get = [];
  for (let i = 0; i < SMALL + 10; i++) {
    const t0 = performance.now();
    const w = await fetch(url(`/root/small-${i % 10}.txt`), { method: 'PUT', headers: auth, body: small });
    if (!w.ok) throw new Error(`PUT: ${w.status} ${await w.text()}`);
    await w.arrayBuffer();
    const t1 = performance.now();
    const r = await fetch(url(`/root/small-${i % 10}.txt`), { headers: auth });
    const back = Buffer.from(await r.arrayBuffer());
    const t2 = performance.now();
    if (!back.equals(small)) throw new Error('small file differs');
    if (i >= 10) {
      put.push(t1 - t0);
      get.push(t2 - t1);
      rt.push(t2 - t0);
    }
  }
  rows['1 KiB write (PUT)'] = stats(put);
  rows['1 KiB read (GET)'] = stats(get);
  rows['1 KiB round trip (PUT+GET)'] = stats(rt);
  const list = [];
  for (let i = 0; i < SMALL; i++) {
    const t0 = performance.now();
    const r = await fetch(`${server.url}/api/v1/mags-jobs/${job}/files/list?path=/root`, { headers: auth });
    await r.json();
    list.push(performance.now() - t0);
  }
  rows['list /root'] = stats(list);
  // Baseline of the same run: an API call that touches no sandbox (auth, a database read, JSON).
  const status = [];
  for (let i = 0; i < SMALL; i++) {
    const t0 = performance.now();
    const r = await fetch(`${server.url}/api/v1/mags-jobs/${job}/status`, { headers: auth });
    await r.json();
    status.push(performance.now() - t0);
  }
  rows['status (baseline, no sandbox)'] = stats(status);

  printTable(`files API (${RUNS} runs of 100 MiB, ${SMALL} small; load ${loadavg().map((l) => l.toFixed(2)).join(' ')})`, Object.entries(rows).map(([name, s]) => ({
    name,
    ...s,
    note: name.startsWith('100 MiB') ? mibps(s) : '',
  })));
  writeFileSync(join(REPO, 'bench/files.results.json'), `${JSON.stringify({ host: { load: loadavg() }, rows }, null, 2)}\n`);
} finally {
  await fetch(`${server.url}/api/v1/mags-jobs/${job}/stop`, { method: 'POST', headers: auth }).catch(() => undefined);
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}

async function readAll(path) {
  const chunks = [];
  for await (const c of createReadStream(path)) chunks.push(c);
  return Buffer.concat(chunks);
}
