#!/usr/bin/env node
// Job output storage: rows, seconds and database growth for output floods, this tree against a
// baseline tree (default: the commit before output was stored as chunks) in the same run.
//   node bench/logs.mjs [--runs 3] [--baseline-rev 6b0fcb0]
// Each run is a fresh in-process control plane (test/helpers/harness.ts: SQLite file, the fake
// runtime running the script as a local process), one job, then: rows in the log table, time from
// submit to the job's end with its output stored, time to read the whole Mags JSON logs answer,
// and the growth of the database files (after a WAL checkpoint). Needs `npm run build` first.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO, fmt, numberOption, stats } from './lib.mjs';

const SCENARIOS = {
  'empty-lines-2M': "yes '' | head -n 2000000",
  'mixed-10MiB': 'head -c 5242880 /dev/zero | tr "\\0" x | fold -w 100; head -c 2621440 /dev/urandom | base64 -w 60 >&2; seq 1 100000',
};

if (process.argv[2] === '--worker') {
  const [, , , tree, name] = process.argv;
  console.log(JSON.stringify(await worker(tree, SCENARIOS[name])));
  process.exit(0);
}

const runs = numberOption('--runs', 3);
const revIndex = process.argv.indexOf('--baseline-rev');
const rev = revIndex >= 0 ? process.argv[revIndex + 1] : '6b0fcb0';
const baseline = prepareBaseline(rev);
const results = [];
for (const name of Object.keys(SCENARIOS)) {
  for (const [label, tree] of [['baseline ' + rev, baseline], ['this tree', REPO]]) {
    const samples = [];
    for (let i = 0; i < runs; i++) {
      const r = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--worker', tree, name], { encoding: 'utf8', maxBuffer: 1 << 20 });
      if (r.status !== 0) throw new Error(`${label} ${name} failed:\n${r.stderr}`);
      samples.push(JSON.parse(r.stdout.trim().split('\n').pop()));
    }
    results.push({ name, label, samples });
  }
}
console.log(`runs per cell: ${runs}; median (p95) per cell\n`);
console.log('| scenario | tree | lines | rows | job ms | read JSON ms | DB growth MiB |');
console.log('|---|---|---|---|---|---|---|');
for (const { name, label, samples } of results) {
  const cell = (key, f = fmt) => {
    const s = stats(samples.map((x) => x[key]));
    return `${f(s.p50)} (${f(s.p95)})`;
  };
  const mib = (v) => (v / 1048576).toFixed(1);
  console.log(`| ${name} | ${label} | ${samples[0].lines} | ${samples[0].rows} | ${cell('jobMs')} | ${cell('readMs')} | ${cell('dbBytes', mib)} |`);
}

/** A built copy of the server at `rev` under the temp dir (made once, reused). */
function prepareBaseline(rev) {
  const dir = join(tmpdir(), `mags-bench-logs-${rev}`);
  if (existsSync(join(dir, 'packages/server/dist/test/helpers/harness.js'))) return dir;
  mkdirSync(dir, { recursive: true });
  execFileSync('sh', ['-c', `git -C "${REPO}" archive ${rev} packages/shared packages/server tsconfig.base.json | tar -x -C "${dir}"`]);
  if (!existsSync(join(dir, 'node_modules'))) symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(join(REPO, 'node_modules/.bin/tsc'), ['-b', 'packages/server'], { cwd: dir, stdio: 'inherit' });
  return dir;
}

async function worker(tree, script) {
  const { createHarness } = await import(pathToFileURL(join(tree, 'packages/server/dist/test/helpers/harness.js')).href);
  const before = new Set(readdirSync(tmpdir()));
  const h = await createHarness({ maxOutputBytes: 1 << 30, jobTimeoutSeconds: 600 });
  try {
    const dir = join(tmpdir(), readdirSync(tmpdir()).find((d) => d.startsWith('mags-harness-') && !before.has(d)));
    const dbSize = () => ['mags.db', 'mags.db-wal'].reduce((n, f) => n + (existsSync(join(dir, f)) ? statSync(join(dir, f)).size : 0), 0);
    const auth = { authorization: `Bearer ${h.adminToken}` };
    const size0 = dbSize();
    const t0 = performance.now();
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: auth, payload: { script, type: 'inline' } });
    const id = res.json().request_id;
    const st = await h.waitDone(h.adminToken, id, 600_000);
    if (st.status !== 'completed') throw new Error(`job ended ${JSON.stringify(st)}`);
    await h.logs.flush();
    const jobMs = performance.now() - t0;
    const t1 = performance.now();
    const all = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${id}/logs`, headers: auth });
    const lines = all.json().logs.length;
    const readMs = performance.now() - t1;
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(join(dir, 'mags.db'));
    const tables = db.prepare("select name from sqlite_master where type = 'table'").all().map((r) => r.name);
    const table = tables.includes('job_log_chunks') ? 'job_log_chunks' : 'job_logs';
    const rows = db.prepare(`select count(*) as n from ${table} where job_id = ?`).get(id).n;
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    return { lines, rows, jobMs, readMs, dbBytes: dbSize() - size0 };
  } finally {
    await h.close();
  }
}
