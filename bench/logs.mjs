#!/usr/bin/env node
// Cost of storing job output in the log store: 2 M empty lines, and 10 MiB of 80-character lines,
// appended as the log feed does (batches of 500 lines, its flush size), on SQLite (and PostgreSQL
// with --pg): seconds, rows, database growth, then the time to page through it all 1000 lines at a
// time. With `--base DIR` the same runs against another built checkout (e.g. the previous main
// commit), in the same run.
//
//   node bench/logs.mjs [--base /work/wt-base] [--pg] [--lines 2000000]
import { statSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO } from './lib.mjs';

const { values: opt } = parseArgs({ options: { base: { type: 'string' }, pg: { type: 'boolean', default: false }, lines: { type: 'string', default: '2000000' } } });
const BATCH = 500;

function dirBytes(dir) {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

async function one(repo, label, kind, makeLines) {
  const { openStores } = await import(join(repo, 'packages/server/dist/src/storage/stores.js'));
  const { job } = await import(join(repo, 'packages/server/dist/test/helpers/stores.js'));
  const { newId } = await import(join(repo, 'packages/server/dist/src/services/tokens.js'));
  const dir = mkdtempSync(join(tmpdir(), 'mags-bench-logs-'));
  let pg;
  if (kind === 'pg') pg = await (await import(join(repo, 'packages/server/dist/test/helpers/postgres.js'))).startPostgres();
  const stores = await openStores(pg ? { url: pg.url, sqlitePath: '' } : { sqlitePath: join(dir, 'mags.db') });
  const sizeNow = async () => {
    if (!pg) return dirBytes(dir);
    const { Client } = (await import('pg')).default;
    const c = new Client({ connectionString: pg.url });
    await c.connect();
    try {
      return Number((await c.query('select pg_database_size(current_database()) as n')).rows[0].n);
    } finally {
      await c.end();
    }
  };
  try {
    const user = { id: newId(), name: 'bench', admin: false, created_at: new Date().toISOString() };
    await stores.users.createUser(user);
    const j = job(user.id);
    await stores.jobs.insertJob(j);
    const before = await sizeNow();
    const lines = makeLines(j.request_id);
    const t0 = performance.now();
    for (let i = 0; i < lines.length; i += BATCH) await stores.logs.append(lines.slice(i, i + BATCH));
    const secs = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    let after = 0;
    let read = 0;
    for (;;) {
      const page = await stores.logs.read(j.request_id, after, 1000);
      if (page.length === 0) break;
      read += page.length;
      after = page.at(-1).seq;
    }
    const readSecs = (performance.now() - t1) / 1000;
    if (read !== lines.length) throw new Error(`read ${read} of ${lines.length} lines`);
    const growth = (await sizeNow()) - before;
    const { sql } = await import(join(repo, 'node_modules/kysely/dist/esm/index.js'));
    const { openDatabase } = await import(join(repo, 'packages/server/dist/src/storage/metadata/db.js'));
    const opened = openDatabase(pg ? { url: pg.url, sqlitePath: '' } : { sqlitePath: join(dir, 'mags.db') });
    let rows = 0;
    try {
      for (const table of ['job_logs', 'job_log_blocks']) {
        const r = await sql`select count(*) as n from ${sql.table(table)}`.execute(opened.db).catch(() => null);
        rows += r ? Number(r.rows[0].n) : 0;
      }
    } finally {
      await opened.db.destroy();
    }
    return { label, lines: lines.length, secs, readSecs, rows, growthMiB: growth / 1024 / 1024 };
  } finally {
    await stores.close();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const N = Number(opt.lines);
const ts = (i) => new Date(Date.UTC(2026, 0, 1) + Math.floor(i / 100)).toISOString();
const empty = (id) => Array.from({ length: N }, (_, i) => ({ job_id: id, seq: i + 1, timestamp: ts(i), stream: 'stdout', message: '' }));
const text = (id) => Array.from({ length: Math.ceil((10 * 1024 * 1024) / 81) }, (_, i) => ({ job_id: id, seq: i + 1, timestamp: ts(i), stream: 'stdout', message: `${String(i).padStart(8, '0')} ${'x'.repeat(71)}` }));
const trees = opt.base ? [['before', opt.base], ['after', REPO]] : [['this tree', REPO]];
const rows = [];
for (const kind of opt.pg ? ['sqlite', 'pg'] : ['sqlite']) {
  for (const [what, make] of [[`${N} empty lines`, empty], ['10 MiB of 80-char lines', text]]) {
    for (const [label, repo] of trees) rows.push({ db: kind, what, ...(await one(repo, label, kind, make)) });
  }
}
console.log('\ndb      output                    tree        lines     rows   append s  read s  growth MiB');
for (const r of rows) {
  console.log(`${r.db.padEnd(7)} ${r.what.padEnd(25)} ${r.label.padEnd(10)} ${String(r.lines).padStart(8)} ${String(r.rows).padStart(8)} ${r.secs.toFixed(1).padStart(9)} ${r.readSecs.toFixed(1).padStart(7)} ${r.growthMiB.toFixed(1).padStart(10)}`);
}
