#!/usr/bin/env node
// The files API on a real server: 100 MiB write (PUT) and read (GET) throughput through the API,
// beside the floor of the same bytes through a pipe on the host (`cat` of the file) and, when podman
// is installed, `podman cp` of the same file into and out of a container; then the small-file round
// trip (1 KiB PUT + GET, warm, keep-alive) and a listing, p50 and p95, beside a status call (an API
// call that reaches no sandbox) as the baseline of the same run.
//
//   node bench/files.mjs [--runs 5] [--small 200] [--base DIR]
//
// With `--base DIR` (another built checkout, e.g. the tree before a change) both servers run at once
// and take turns request by request (100 MiB runs too), the first of each turn alternating, so both
// see the same load; the table shows each case for `base` and `this tree`.
// Needs root, a built tree (npm run build) and the base image. Prints a table and writes
// bench/files.results.json; docs/benchmarks.md records a run.
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO, api, printTable, startServer, stats } from './lib.mjs';

const { values: opt } = parseArgs({ options: { runs: { type: 'string', default: '5' }, small: { type: 'string', default: '200' }, base: { type: 'string' } } });
const RUNS = Number(opt.runs);
const SMALL = Number(opt.small);
const MiB = 1024 * 1024;
const SIZE = 100 * MiB;

const dir = mkdtempSync(join(tmpdir(), 'mags-bench-files-'));
const src = join(dir, 'src.bin');
writeFileSync(src, randomBytes(SIZE));
const env = { MAGS_POOL_MIN_SIZE: '1', MAGS_FREEZE_AFTER_SECONDS: '0', MAGS_SLEEP_AFTER_SECONDS: '0' };
const targets = [];
const job = 'bench-files';
const named = (t, name) => (t.label ? `${name} [${t.label}]` : name);

function curl(t, args) {
  const t0 = performance.now();
  const r = spawnSync('curl', ['-sS', '--fail-with-body', '-H', `authorization: Bearer ${t.server.token}`, ...args], { encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`curl ${args.join(' ')}: ${r.stdout} ${r.stderr}`);
  return ms;
}

function timed(fn, runs) {
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(fn());
  return stats(samples);
}

/** The targets' indexes in the order of turn `i` (alternating, so neither always goes first). */
const order = (i) => (i % 2 ? [...targets.keys()].reverse() : [...targets.keys()]);

/** Runs `fn(target)` for every target in turn, `runs` times; one stats row per target. */
async function turns(rows, name, runs, fn) {
  const samples = targets.map(() => []);
  for (let i = 0; i < runs; i++) {
    for (const k of order(i)) {
      const ms = await fn(targets[k], i);
      if (ms !== undefined) samples[k].push(ms);
    }
  }
  for (const [k, t] of targets.entries()) rows[named(t, name)] = stats(samples[k]);
}

const mibps = (s) => `${((SIZE / MiB) / (s.p50 / 1000)).toFixed(0)} MiB/s at p50`;

try {
  if (opt.base) targets.push({ label: 'base', server: await startServer(env, opt.base) });
  targets.push({ label: opt.base ? 'this tree' : '', server: await startServer(env) });
  for (const t of targets) {
    t.client = api(t.server);
    t.auth = { authorization: `Bearer ${t.server.token}` };
    t.url = (p) => `${t.server.url}/api/v1/mags-jobs/${job}/files?path=${encodeURIComponent(p)}`;
    await t.client.submit('true', { name: job, persistent: true });
    for (let i = 0; ; i++) {
      const st = await t.client.json(`/api/v1/mags-jobs/${job}/status`);
      if (st.status === 'running' && st.vm_id) break;
      if (i > 3000) throw new Error(`job did not come up: ${JSON.stringify(st)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const rows = {};

  rows['100 MiB host cat (floor)'] = timed(() => {
    const t0 = performance.now();
    execFileSync('sh', ['-c', `cat ${src} > /dev/null`]);
    return performance.now() - t0;
  }, RUNS);
  await turns(rows, '100 MiB write (PUT)', RUNS, (t) => curl(t, ['-T', src, '-o', '/dev/null', t.url('/root/big.bin')]));
  await turns(rows, '100 MiB read (GET)', RUNS, (t) => curl(t, ['-o', join(dir, 'back.bin'), t.url('/root/big.bin')]));
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
  const rt = targets.map(() => []);
  const put = targets.map(() => []);
  const get = targets.map(() => []);
  for (let i = 0; i < SMALL + 10; i++) {
    for (const k of order(i)) {
      const t = targets[k];
      const t0 = performance.now();
      const w = await fetch(t.url(`/root/small-${i % 10}.txt`), { method: 'PUT', headers: t.auth, body: small });
      if (!w.ok) throw new Error(`PUT: ${w.status} ${await w.text()}`);
      await w.arrayBuffer();
      const t1 = performance.now();
      const r = await fetch(t.url(`/root/small-${i % 10}.txt`), { headers: t.auth });
      const back = Buffer.from(await r.arrayBuffer());
      const t2 = performance.now();
      if (!back.equals(small)) throw new Error('small file differs');
      if (i >= 10) {
        put[k].push(t1 - t0);
        get[k].push(t2 - t1);
        rt[k].push(t2 - t0);
      }
    }
  }
  for (const [k, t] of targets.entries()) {
    rows[named(t, '1 KiB write (PUT)')] = stats(put[k]);
    rows[named(t, '1 KiB read (GET)')] = stats(get[k]);
    rows[named(t, '1 KiB round trip (PUT+GET)')] = stats(rt[k]);
  }
  await turns(rows, 'list /root', SMALL, async (t) => {
    const t0 = performance.now();
    const r = await fetch(`${t.server.url}/api/v1/mags-jobs/${job}/files/list?path=/root`, { headers: t.auth });
    await r.json();
    return performance.now() - t0;
  });
  // Baseline of the same run: an API call that touches no sandbox (auth, a database read, JSON).
  await turns(rows, 'status (baseline, no sandbox)', SMALL, async (t) => {
    const t0 = performance.now();
    const r = await fetch(`${t.server.url}/api/v1/mags-jobs/${job}/status`, { headers: t.auth });
    await r.json();
    return performance.now() - t0;
  });

  printTable(`files API (${RUNS} runs of 100 MiB, ${SMALL} small; load ${loadavg().map((l) => l.toFixed(2)).join(' ')})`, Object.entries(rows).map(([name, s]) => ({
    name,
    ...s,
    note: name.startsWith('100 MiB') ? mibps(s) : '',
  })));
  writeFileSync(join(REPO, 'bench/files.results.json'), `${JSON.stringify({ host: { load: loadavg() }, rows }, null, 2)}\n`);
} finally {
  for (const t of targets) {
    await fetch(`${t.server.url}/api/v1/mags-jobs/${job}/stop`, { method: 'POST', headers: { authorization: `Bearer ${t.server.token}` } }).catch(() => undefined);
    await t.server.stop();
  }
  rmSync(dir, { recursive: true, force: true });
}

async function readAll(path) {
  const chunks = [];
  for await (const c of createReadStream(path)) chunks.push(c);
  return Buffer.concat(chunks);
}
