#!/usr/bin/env node
/**
 * Driver-level benchmark of the crun container runtime, side by side in one run:
 *   - raw `crun run` of `echo hi` on the read-only image (the floor: no overlay, no agent, no network)
 *   - cold create + exec `echo hi` + destroy, without and with sandbox networking
 *   - warm exec of `echo hi` on a ready sandbox, and pool acquire + exec
 *   - memory per idle sandbox (N idle, loopback-only): cgroup charge and host-wide used-memory delta
 *   - podman run --rm of the same root file system when podman is installed
 * Needs root and a built tree (`npm run build`). Prints a table and writes bench/runtime.results.json.
 *
 *   node bench/runtime.mjs [--runs 30] [--warm 300] [--idle 150]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { numberOption, podmanSamples, stats as baseStats } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'packages/server/dist/src');
const { createContainerDriver } = await import(join(dist, 'runtime/drivers/container.js'));
const { instancePrefix } = await import(join(dist, 'runtime/instance.js'));
const { findImage, buildImage } = await import(join(dist, 'runtime/image.js'));
const { createPool } = await import(join(dist, 'scheduler/pool.js'));
const { default: pino } = await import(join(root, 'node_modules/pino/pino.js'));

const RUNS = numberOption('--runs', 30);
const WARM = numberOption('--warm', 300);
const IDLE = numberOption('--idle', 150);
const imageDir = process.env.MAGS_IMAGE_DIR ?? '/var/cache/mags/images';
const log = pino({ level: process.env.MAGS_BENCH_LOG ?? 'warn' });
const limits = { vcpus: 2, memoryMb: 1024, diskGb: 2, pids: 1024 };

function stats(samples) {
  const s = baseStats(samples);
  return { n: s.n, p50: round(s.p50), p95: round(s.p95), min: round(s.min) };
}
const round = (x) => Math.round(x * 100) / 100;
const now = () => performance.now();
const results = {};

function meminfoUsedBytes() {
  const m = Object.fromEntries(
    readFileSync('/proc/meminfo', 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [k, v] = l.split(':');
        return [k, Number(v.trim().split(' ')[0]) * 1024];
      }),
  );
  return m.MemTotal - m.MemAvailable;
}

if (!findImage(imageDir)) await buildImage({ imageDir, onProgress: (m) => console.error(m) });
const image = findImage(imageDir);
const dataDir = mkdtempSync(join(tmpdir(), 'mags-bench-'));
const instance = instancePrefix(dataDir);
const driver = createContainerDriver({ dataDir, imageDir, instance, log });
const offline = createContainerDriver({ dataDir: dataDir + '-offline', imageDir, instance: instancePrefix(dataDir + '-offline'), log, network: null });
mkdirSync(dataDir + '-offline', { recursive: true });
const benchStarted = now();
try {
  await driver.init();
  await offline.init();

  // 1. The floor: raw crun run on the mounted read-only image.
  {
    const bundle = join(dataDir, 'raw-bundle');
    mkdirSync(bundle, { recursive: true });
    execFileSync('crun', ['spec'], { cwd: bundle });
    const cfg = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    cfg.root = { path: join(dataDir, 'runtime/image', image.version), readonly: true };
    cfg.process.terminal = false;
    cfg.process.args = ['/bin/echo', 'hi'];
    cfg.process.rlimits = [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }];
    cfg.linux.cgroupsPath = `/${instance}/raw`;
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(cfg));
    const samples = [];
    for (let i = 0; i < RUNS; i++) {
      const t = now();
      const r = spawnSync('crun', ['--root', join(dataDir, 'raw-crun'), 'run', '--bundle', bundle, `${instance}-raw${i}`], { encoding: 'utf8' });
      samples.push(now() - t);
      if (r.stdout.trim() !== 'hi') throw new Error(`raw crun run failed: ${r.stderr}`);
    }
    results['raw crun run echo hi (floor)'] = stats(samples);
  }

  // 2. Cold create + exec + destroy.
  for (const [name, d] of [['cold create+exec+destroy, loopback only', offline], ['cold create+exec+destroy, with network', driver]]) {
    const total = [];
    const create = [];
    const destroy = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = now();
      const sb = await d.create({ limits });
      const t1 = now();
      const r = await sb.exec({ script: 'echo hi' }, () => {});
      const t2 = now();
      await sb.destroy();
      const t3 = now();
      if (r.exitCode !== 0) throw new Error('echo failed');
      total.push(t3 - t0);
      create.push(t1 - t0);
      destroy.push(t3 - t2);
    }
    results[name] = stats(total);
    results[`  of which create (${name.includes('network') && !name.includes('loopback') ? 'network' : 'loopback'})`] = stats(create);
    results[`  of which destroy (${name.includes('network') && !name.includes('loopback') ? 'network' : 'loopback'})`] = stats(destroy);
  }

  // 3. Warm: exec on a ready sandbox; pool acquire + exec.
  {
    const sb = await driver.create({ limits });
    const samples = [];
    for (let i = 0; i < WARM; i++) {
      const t = now();
      await sb.exec({ script: 'echo hi' }, () => {});
      samples.push(now() - t);
    }
    results['warm exec echo hi (ready sandbox)'] = stats(samples.slice(10));
    await sb.destroy();

    const pool = createPool(offline, { minSize: 3, maxSize: 10, defaultLimits: limits, log });
    pool.start();
    const acq = [];
    for (let i = 0; i < Math.min(RUNS, 20); i++) {
      while (pool.status().idle_vms < 3) await new Promise((r) => setTimeout(r, 5));
      const t = now();
      const { sandbox, warm } = await pool.acquire({ limits: { ...limits, memoryMb: 512 } });
      await sandbox.exec({ script: 'echo hi' }, () => {});
      acq.push(now() - t);
      if (!warm) throw new Error('expected a warm sandbox');
      await pool.release(sandbox);
    }
    results['pool acquire (apply limits) + exec echo hi'] = stats(acq);
    await pool.stop();
  }

  // 3b. Sustained throughput of fresh sandboxes (what a stream of short jobs costs without reuse).
  for (const [name, d] of [['loopback only', offline], ['with network', driver]]) {
    let done = 0;
    const end = now() + 5000;
    const started = now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (now() < end) {
          const sb = await d.create({ limits });
          await sb.exec({ script: 'echo hi' }, () => {});
          await sb.destroy();
          done++;
        }
      }),
    );
    results[`sustained create+exec+destroy, 8 concurrent, ${name}`] = { per_second: round(done / ((now() - started) / 1000)) };
  }

  // 4. Memory per idle sandbox (skipped with --idle 0).
  if (IDLE > 0) {
    await new Promise((r) => setTimeout(r, 500));
    const before = meminfoUsedBytes();
    const t = now();
    const idle = [];
    for (let i = 0; i < IDLE; i++) idle.push(await offline.create({ limits }));
    const createMs = now() - t;
    await new Promise((r) => setTimeout(r, 1000));
    const after = meminfoUsedBytes();
    let cg = 0;
    for (const sb of idle) {
      const file = existsSync('/sys/fs/cgroup/memory') ? `/sys/fs/cgroup/memory/${instancePrefix(dataDir + '-offline')}/${sb.id}/memory.usage_in_bytes` : `/sys/fs/cgroup/${instancePrefix(dataDir + '-offline')}/${sb.id}/memory.current`;
      cg += Number(readFileSync(file, 'utf8'));
    }
    // The last one still answers.
    const t2 = now();
    await idle[idle.length - 1].exec({ script: 'echo hi' }, () => {});
    const lastExec = now() - t2;
    results[`memory per idle sandbox (${IDLE} idle)`] = {
      cgroup_mib: round(cg / IDLE / 1048576),
      host_used_mib: round((after - before) / IDLE / 1048576),
      create_all_s: round(createMs / 1000),
      exec_with_all_idle_ms: round(lastExec),
    };
    const td = now();
    for (let i = 0; i < idle.length; i += 8) await Promise.all(idle.slice(i, i + 8).map((s) => s.destroy()));
    results[`memory per idle sandbox (${IDLE} idle)`].destroy_all_s = round((now() - td) / 1000);
  }

  // 5. podman baseline (same root file system imported as an image; see ARCHITECTURE.md "Host facts").
  const pod = podmanSamples(image.path, Math.min(RUNS, 10));
  if (pod) {
    results['podman run --rm --network none echo hi'] = stats(pod.none);
    results['podman run --rm echo hi (default network)'] = stats(pod.net);
  } else {
    results['podman run --rm echo hi'] = { note: 'skipped: podman is not installed (apt-get install podman runc)' };
  }
} finally {
  await driver.shutdown().catch((e) => console.error('shutdown', e));
  await offline.shutdown().catch((e) => console.error('shutdown', e));
  spawnSync('sh', ['-c', `for d in /sys/fs/cgroup/*/${instance}/raw /sys/fs/cgroup/*/${instance}; do rmdir $d 2>/dev/null; done`]);
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(dataDir + '-offline', { recursive: true, force: true });
}

console.log(`\nruntime benchmark (${new Date().toISOString()}, ${RUNS} runs, ${WARM} warm execs, ${IDLE} idle; took ${round((now() - benchStarted) / 1000)} s)\n`);
console.log('| case | p50 ms | p95 ms | min ms | n |');
console.log('|---|---|---|---|---|');
for (const [name, r] of Object.entries(results)) {
  if ('p50' in r) console.log(`| ${name} | ${r.p50} | ${r.p95} | ${r.min} | ${r.n} |`);
}
for (const [name, r] of Object.entries(results)) if (!('p50' in r)) console.log(`\n${name}: ${JSON.stringify(r)}`);
writeFileSync(join(root, 'bench/runtime.results.json'), JSON.stringify({ at: new Date().toISOString(), runs: RUNS, results }, null, 2) + '\n');
