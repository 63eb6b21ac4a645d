#!/usr/bin/env node
// End-to-end benchmark of `echo hi` through the HTTP API (submit -> completed -> output read), warm
// pool and cold, beside raw `crun run` of the same image as the floor and `podman run --rm` when podman
// is installed; then sustained jobs/s and memory per idle sandbox.
//
//   node bench/e2e.mjs [--runs 40] [--jobs 200] [--concurrency 8] [--idle 500]
//
// Needs root, a built tree (npm run build) and the base image (MAGS_IMAGE_DIR, default
// /var/cache/mags/images). Prints medians and p95; docs/benchmarks.md records a run.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { api, podmanSamples, printTable, startServer, stats } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '40' },
    jobs: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '8' },
    idle: { type: 'string', default: '500' },
  },
});
const RUNS = Number(opt.runs);
const JOBS = Number(opt.jobs);
const CONC = Number(opt.concurrency);
const IDLE = Number(opt.idle);
const imageDir = process.env.MAGS_IMAGE_DIR ?? '/var/cache/mags/images';

function newestImage() {
  const versions = readdirSync(imageDir)
    .map((v) => join(imageDir, v, 'rootfs.erofs'))
    .filter((p) => existsSync(p))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!versions.length) throw new Error(`no built image in ${imageDir}: run \`mags server image build\``);
  return versions[0];
}

function timeCommand(cmd, args, runs) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    const dt = performance.now() - t0;
    if (r.status !== 0 || !r.stdout.includes('hi')) throw new Error(`${cmd} failed: ${r.stderr}`);
    samples.push(dt);
  }
  return stats(samples);
}

/** Raw `crun run` of `sh -c 'echo hi'` on the erofs image: the floor under any container runtime. */
function rawCrun(image, runs) {
  const dir = mkdtempSync(join(tmpdir(), 'mags-bench-crun-'));
  const mnt = join(dir, 'rootfs');
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'erofs', '-o', 'loop,ro', image, mnt]);
  try {
    execFileSync('crun', ['spec'], { cwd: dir });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    cfg.process.terminal = false;
    cfg.process.args = ['/bin/sh', '-c', 'echo hi'];
    cfg.root = { path: 'rootfs', readonly: true };
    cfg.process.rlimits = [];
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    return timeCommand('crun', ['--root', join(dir, 'state'), 'run', '--bundle', dir, 'magsbench'], runs);
  } finally {
    spawnSync('crun', ['--root', join(dir, 'state'), 'delete', '-f', 'magsbench']);
    spawnSync('umount', [mnt]);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function endToEnd(client, warm) {
  const samples = [];
  for (let i = 0; i < RUNS; i++) {
    if (warm) await client.waitPoolIdle(1);
    const t0 = performance.now();
    const id = await client.submit('echo hi');
    const { lines, end } = await client.follow(id);
    const dt = performance.now() - t0;
    if (end?.status !== 'completed' || !lines.some((l) => l.message === 'hi')) {
      throw new Error(`job ${id} ended ${JSON.stringify(end)} with ${JSON.stringify(lines)}`);
    }
    samples.push(dt);
  }
  return stats(samples);
}

async function sustained(client) {
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < JOBS) {
        next++;
        const id = await client.submit('echo hi');
        const { end } = await client.follow(id);
        if (end?.status !== 'completed') failed++;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { jobsPerSec: JOBS / secs, secs, failed };
}

function memAvailableKiB() {
  return Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))[1]);
}

async function idleMemory() {
  execFileSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
  const before = memAvailableKiB();
  const server = await startServer({ MAGS_POOL_MIN_SIZE: String(IDLE), MAGS_POOL_MAX_SIZE: String(IDLE) });
  try {
    const t0 = performance.now();
    await api(server).waitPoolIdle(IDLE, 600_000);
    const fillSecs = (performance.now() - t0) / 1000;
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    const after = memAvailableKiB();
    return { perSandboxMiB: (before - after) / 1024 / IDLE, fillSecs };
  } finally {
    await server.stop();
  }
}

const image = newestImage();
console.log(`Mags end-to-end benchmark: ${cpus().length} cores, image ${image}`);
const rows = [];
const floor = rawCrun(image, RUNS);
rows.push({ name: 'raw crun run (floor, no overlay/net)', ...floor });
const pod = podmanSamples(image, Math.min(RUNS, 20));
if (pod) {
  rows.push({ name: 'podman run --rm --network none', ...stats(pod.none) });
  rows.push({ name: 'podman run --rm (default net)', ...stats(pod.net) });
}

const warmServer = await startServer({ MAGS_POOL_MIN_SIZE: '4' });
let sus;
try {
  const c = api(warmServer);
  await c.waitPoolIdle(4, 120_000);
  rows.push({ name: 'mags API, warm pool', ...(await endToEnd(c, true)), note: 'submit -> end event -> output read' });
  sus = await sustained(c);
} finally {
  await warmServer.stop();
}
const coldServer = await startServer({ MAGS_POOL_MIN_SIZE: '0' });
try {
  rows.push({ name: 'mags API, cold (no pool)', ...(await endToEnd(api(coldServer), false)), note: 'new sandbox per job' });
} finally {
  await coldServer.stop();
}
if (!pod) rows.push({ name: 'podman run --rm', note: 'podman not installed: apt-get install podman runc' });
printTable('echo hi, end to end (ms)', rows);
console.log(`\nsustained: ${JOBS} jobs, ${CONC} clients: ${sus.jobsPerSec.toFixed(1)} jobs/s (${sus.secs.toFixed(1)} s, ${sus.failed} failed)`);
if (IDLE > 0) {
  const m = await idleMemory();
  console.log(`idle sandboxes: ${IDLE} started in ${m.fillSecs.toFixed(1)} s, ${m.perSandboxMiB.toFixed(2)} MiB each (host MemAvailable delta / ${IDLE})`);
}
