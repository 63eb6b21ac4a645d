#!/usr/bin/env node
// The retention sweep of schedule firings on SQLite (better-sqlite3 runs each statement on the
// event loop): `pruneRuns` (per schedule, primary-key ranges) beside one window-function DELETE over
// the whole table as the baseline, on copies of the same data: S schedules with N firings each over
// 60 days, a 30-day cutoff, the newest 50 kept. Prints the time of the first sweep (half the rows go)
// and of a second one (nothing to do), and the longest the event loop was held.
//
//   node bench/retention.mjs [--schedules 100] [--firings 2000]
//
// Needs a built tree (npm run build); no root.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { numberOption, REPO } from './lib.mjs';

const S = numberOption('--schedules', 100);
const N = numberOption('--firings', 2000);
const D = join(REPO, 'packages/server/dist/src');
const { openStores } = await import(join(D, 'storage/stores.js'));
const { openDatabase } = await import(join(D, 'storage/metadata/db.js'));
const { KEEP_NEWEST } = await import(join(D, 'services/retention.js'));
const { sql } = await import(join(REPO, 'node_modules/kysely/dist/esm/index.js'));

const DAY = 86_400_000;
const now = Date.now();
const cutoff = new Date(now - 30 * DAY).toISOString();
const dir = mkdtempSync(join(tmpdir(), 'mags-bench-retention-'));

/** `fn`'s wall time and the longest gap between ticks of a 1 ms timer while it ran (ms). */
async function measure(fn) {
  let last = performance.now();
  let heldMs = 0;
  const tick = setInterval(() => {
    const t = performance.now();
    heldMs = Math.max(heldMs, t - last);
    last = t;
  }, 1);
  const t0 = performance.now();
  const deleted = await fn();
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 5)); // the timer sees the last gap
  clearInterval(tick);
  return { ms, heldMs, deleted };
}

try {
  const seed = join(dir, 'seed.db');
  const stores = await openStores({ sqlitePath: seed });
  const at = new Date(now - 60 * DAY).toISOString();
  await stores.users.createUser({ id: 'u', name: 'u', admin: false, created_at: at });
  for (let s = 0; s < S; s++) {
    await stores.cron.insertSchedule({ id: `s${s}`, user_id: 'u', name: `s${s}`, cron_expression: '* * * * *', timezone: 'UTC', script: 'true', job_options: {}, enabled: false, overlap: 'skip', catch_up: 'one', jitter_seconds: 0, next_run_at: null, due_at: null, last_run_at: null, created_at: at, updated_at: at });
  }
  await stores.close();
  const { db } = openDatabase({ sqlitePath: seed });
  for (let s = 0; s < S; s++) {
    const rows = [];
    for (let i = 0; i < N; i++) {
      const t = new Date(now - 60 * DAY + i * ((60 * DAY) / N)).toISOString();
      rows.push({ schedule_id: `s${s}`, scheduled_for: t, trigger: 'schedule', outcome: i % 10 === 0 ? 'submitted' : 'skipped', job_id: null, message: null, created_at: t });
    }
    for (let i = 0; i < rows.length; i += 500) await db.insertInto('schedule_runs').values(rows.slice(i, i + 500)).execute();
  }
  await db.destroy();

  const window = async (db) => {
    const r = await sql`
      DELETE FROM schedule_runs WHERE created_at < ${cutoff} AND outcome IN ('submitted', 'skipped', 'failed')
        AND (schedule_id, scheduled_for) IN (
          SELECT schedule_id, scheduled_for FROM (
            SELECT schedule_id, scheduled_for, created_at, outcome,
              ROW_NUMBER() OVER (PARTITION BY schedule_id ORDER BY scheduled_for DESC) AS newest,
              ROW_NUMBER() OVER (PARTITION BY schedule_id, outcome ORDER BY created_at DESC, scheduled_for DESC) AS newest_of_outcome
            FROM schedule_runs) ranked
          WHERE newest > ${KEEP_NEWEST} AND created_at < ${cutoff} AND outcome IN ('submitted', 'skipped', 'failed')
            AND NOT (outcome = 'submitted' AND newest_of_outcome = 1))`.execute(db);
    return Number(r.numAffectedRows ?? 0);
  };
  copyFileSync(seed, join(dir, 'base.db'));
  copyFileSync(seed, join(dir, 'this.db'));
  const base = openDatabase({ sqlitePath: join(dir, 'base.db') }).db;
  const mine = await openStores({ sqlitePath: join(dir, 'this.db') });
  const rows = [];
  for (const round of ['first sweep', 'second sweep']) {
    const b = await measure(() => window(base));
    const m = await measure(() => mine.cron.pruneRuns(cutoff, KEEP_NEWEST));
    rows.push([`${round}, one window DELETE (baseline)`, b], [`${round}, pruneRuns`, m]);
  }
  await base.destroy();
  await mine.close();
  console.log(`\nRetention of ${S * N} firings (${S} schedules), SQLite`);
  console.log(`${'case'.padEnd(42)}  ${'deleted'.padStart(8)}  ${'total ms'.padStart(9)}  ${'loop held ms'.padStart(12)}`);
  for (const [name, r] of rows) console.log(`${name.padEnd(42)}  ${String(r.deleted).padStart(8)}  ${r.ms.toFixed(0).padStart(9)}  ${r.heldMs.toFixed(0).padStart(12)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
