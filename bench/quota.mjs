#!/usr/bin/env node
// The quota check every submission makes (UsageMeter.checkSubmit), in-process on a SQLite file:
// the cached quota row (quotaCacheMs 5 s, the server's default) beside reading the row every time
// (quotaCacheMs 0, what the check did before the cache), for a user without quotas and one with all
// three; the two meters take turns call by call.
//
//   node bench/quota.mjs [--runs 2000]
//
// Needs a built tree (npm run build); no root, no sandboxes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { numberOption, REPO, stats } from './lib.mjs';

const RUNS = numberOption('--runs', 2000);
const D = join(REPO, 'packages/server/dist/src');
const { openStores } = await import(join(D, 'storage/stores.js'));
const { UsageMeter } = await import(join(D, 'services/usage.js'));
const { silentLogger } = await import(join(D, 'logger.js'));

const dir = mkdtempSync(join(tmpdir(), 'mags-bench-quota-'));
const stores = await openStores({ sqlitePath: join(dir, 'mags.db') });
try {
  const at = new Date().toISOString();
  const free = { id: 'free', name: 'free', admin: false, created_at: at };
  const limited = { id: 'limited', name: 'limited', admin: false, created_at: at };
  for (const u of [free, limited]) await stores.users.createUser(u);
  await stores.usage.setQuota({ user_id: limited.id, max_concurrent_sandboxes: 100, sandbox_hours_per_month: 1000, storage_gb: 100, updated_at: at });
  const meter = (quotaCacheMs) => new UsageMeter({ store: stores.usage, jobs: stores.jobs, users: stores.users, log: silentLogger(), quotaCacheMs });
  const cases = [
    ['no quota, row read every time (baseline)', meter(0), free],
    ['no quota, cached row', meter(5000), free],
    ['three quotas, row read every time (baseline)', meter(0), limited],
    ['three quotas, cached row', meter(5000), limited],
  ];
  const samples = cases.map(() => []);
  for (let i = 0; i < RUNS; i++) {
    for (const [k, [, m, user]] of cases.entries()) {
      const t = performance.now();
      await m.checkSubmit(user, { workspace: false });
      samples[k].push(performance.now() - t);
    }
  }
  console.log('\nUsageMeter.checkSubmit (microseconds)');
  console.log(`${'case'.padEnd(46)}  ${'n'.padStart(5)}  ${'p50 us'.padStart(8)}  ${'p95 us'.padStart(8)}`);
  for (const [k, [name]] of cases.entries()) {
    const s = stats(samples[k]);
    console.log(`${name.padEnd(46)}  ${String(s.n).padStart(5)}  ${(s.p50 * 1000).toFixed(1).padStart(8)}  ${(s.p95 * 1000).toFixed(1).padStart(8)}`);
  }
} finally {
  await stores.close();
  rmSync(dir, { recursive: true, force: true });
}
