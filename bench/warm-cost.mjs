#!/usr/bin/env node
// Driver-level cost of a sandbox, this tree against another built checkout, interleaved sandbox by
// sandbox: cold create (no network), updateLimits to the job's limits (what the pool does when it
// hands a sandbox out), then exec `echo hi` on it (the warm path), then destroy. Medians.
//
//   node bench/warm-cost.mjs --base /work/wt-base [--runs 40] [--vcpus 1]
//
// Needs root, both trees built and the base image (MAGS_IMAGE_DIR). docs/sandboxes.md records a run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO } from './lib.mjs';

const { values: opt } = parseArgs({ options: { base: { type: 'string' }, runs: { type: 'string', default: '40' }, vcpus: { type: 'string', default: '1' } } });
if (!opt.base) throw new Error('--base DIR (another built checkout) is required');
const trees = { before: opt.base, after: REPO };
const N = Number(opt.runs);
const imageDir = process.env.MAGS_IMAGE_DIR ?? '/var/cache/mags/images';
const drivers = {};
for (const [k, repo] of Object.entries(trees)) {
  const { createContainerDriver } = await import(join(repo, 'packages/server/dist/src/runtime/drivers/container/driver.js'));
  const { instancePrefix } = await import(join(repo, 'packages/server/dist/src/host/instance.js'));
  const { default: pino } = await import(join(repo, 'node_modules/pino/pino.js'));
  const dataDir = mkdtempSync(join(tmpdir(), 'mags-cc-'));
  const d = createContainerDriver({ dataDir, imageDir, instance: instancePrefix(dataDir), log: pino({ level: 'error' }), network: null });
  await d.init();
  drivers[k] = { d, dataDir };
}
const res = { before: { create: [], exec: [], upd: [] }, after: { create: [], exec: [], upd: [] } };
for (let i = 0; i < N + 2; i++) {
  for (const k of ['before', 'after']) {
    const { d } = drivers[k];
    let t = performance.now();
    const sb = await d.create({ limits: { vcpus: 2, memoryMb: 1024, diskGb: 2, pids: 1024 }, network: false });
    const c = performance.now() - t;
    t = performance.now();
    await sb.updateLimits({ vcpus: Number(opt.vcpus), memoryMb: 512 });
    const u = performance.now() - t;
    t = performance.now();
    await sb.exec({ script: 'echo hi' }, () => {});
    const e = performance.now() - t;
    await sb.destroy();
    if (i >= 2) { res[k].create.push(c); res[k].exec.push(e); res[k].upd.push(u); }
  }
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)].toFixed(2); };
for (const k of ['before', 'after']) console.log(k, 'create p50', med(res[k].create), 'updateLimits p50', med(res[k].upd), 'warm exec p50', med(res[k].exec));
for (const { d, dataDir } of Object.values(drivers)) { await d.shutdown(); rmSync(dataDir, { recursive: true, force: true }); }
