#!/usr/bin/env node
// What an lxcfs restart costs the sandboxes that run, against the alternative of recycling them.
// One container driver (this tree) with N sandboxes; each round kills its lxcfs (by the pid its
// supervisor holds), waits for the restart and the repair pass that mounts the new files into every
// sandbox (one `mags-guest procview` exec each), then, as the baseline in the same run, destroys and
// recreates one sandbox (what recycling a pooled sandbox costs). Per-sandbox medians and p95.
//
//   node bench/lxcfs-repair.mjs [--sandboxes 8] [--rounds 15]
//
// Needs root, lxcfs, the tree built and the base image (MAGS_IMAGE_DIR). docs/benchmarks.md records a run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO } from './lib.mjs';

const { values: opt } = parseArgs({ options: { sandboxes: { type: 'string', default: '8' }, rounds: { type: 'string', default: '15' } } });
const N = Number(opt.sandboxes);
const R = Number(opt.rounds);
const imageDir = process.env.MAGS_IMAGE_DIR ?? '/var/cache/mags/images';
const { createContainerDriver } = await import(join(REPO, 'packages/server/dist/src/runtime/drivers/container/driver.js'));
const { instancePrefix } = await import(join(REPO, 'packages/server/dist/src/host/instance.js'));
const { default: pino } = await import(join(REPO, 'node_modules/pino/pino.js'));
const dataDir = mkdtempSync(join(tmpdir(), 'mags-lr-'));
const d = createContainerDriver({ dataDir, imageDir, instance: instancePrefix(dataDir), log: pino({ level: 'error' }), network: null });
const spec = { limits: { vcpus: 1, memoryMb: 512, diskGb: 2, pids: 1024 }, network: false };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const res = { repair: [], recycle: [], restartToRepaired: [] };
try {
  await d.init();
  if (!d.procView.active) throw new Error('lxcfs did not start (apt-get install lxcfs)');
  const sandboxes = [];
  for (let i = 0; i < N; i++) sandboxes.push(await d.create(spec));
  for (let round = 0; round < R; round++) {
    const view = d.procView;
    const generation = view.generation;
    const t0 = performance.now();
    process.kill(view.pid, 'SIGKILL');
    while (view.generation === generation) await sleep(5);
    if (!(await view.ready())) throw new Error('lxcfs did not come back');
    const report = await d.procViewRepair.repairAll();
    const pass = d.procViewRepair.lastReport;
    if (pass.failed.length || pass.generation !== view.generation || pass.repaired.length !== N) throw new Error(`repair pass: ${JSON.stringify(report)}`);
    res.restartToRepaired.push(performance.now() - t0);
    res.repair.push(pass.durationMs / N);
    const r = await sandboxes[round % N].exec({ script: "awk '/^MemTotal/ {print int($2/1024)}' /proc/meminfo" }, () => {});
    if (r.exitCode !== 0) throw new Error(`/proc/meminfo after the repair: ${JSON.stringify(r)}`);
    // Baseline: recycle one sandbox instead (destroy + create).
    const t1 = performance.now();
    const old = sandboxes[round % N];
    await old.destroy();
    sandboxes[round % N] = await d.create(spec);
    res.recycle.push(performance.now() - t1);
  }
} finally {
  await d.shutdown();
  rmSync(dataDir, { recursive: true, force: true });
}
const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(s.length * p))].toFixed(2); };
console.log(`${N} sandboxes, ${R} lxcfs restarts`);
console.log('per sandbox: repair (procview)   p50', q(res.repair, 0.5), 'ms  p95', q(res.repair, 0.95), 'ms');
console.log('per sandbox: recycle (baseline)  p50', q(res.recycle, 0.5), 'ms  p95', q(res.recycle, 0.95), 'ms');
console.log('kill -> restarted and all repaired p50', q(res.restartToRepaired, 0.5), 'ms  p95', q(res.restartToRepaired, 0.95), 'ms');
