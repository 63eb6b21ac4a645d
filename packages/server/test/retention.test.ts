import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../src/logger.js';
import { Retention, type RetentionSweep } from '../src/services/retention.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-06-01T00:00:00Z');

/** A sweep that records the cutoffs it was given and answers `deleted` (or throws). */
function sweep(what: string, days: number, deleted: number | Error): RetentionSweep & { cutoffs: string[] } {
  const cutoffs: string[] = [];
  return {
    what,
    days,
    cutoffs,
    async sweep(cutoff) {
      cutoffs.push(cutoff);
      if (deleted instanceof Error) throw deleted;
      return deleted;
    },
  };
}

/** The maintenance loop's bookkeeping (the sweeps themselves: store-retention and log-volume tests). */
describe('Retention (the periodic maintenance loop)', () => {
  it('gives each sweep its own cutoff, skips those kept forever, and one that fails does not stop the others', async () => {
    const logs = sweep('logs', 0, 5);
    const broken = sweep('broken', 10, new Error('database gone'));
    const runs = sweep('runs', 30, 7);
    const r = new Retention(silentLogger(), [logs, broken, runs], { now: () => NOW });
    assert.equal(await r.sweep(), 7);
    assert.deepEqual(logs.cutoffs, [], '0 days: kept forever, never swept');
    assert.deepEqual(broken.cutoffs, [new Date(NOW - 10 * DAY).toISOString()]);
    assert.deepEqual(runs.cutoffs, [new Date(NOW - 30 * DAY).toISOString()]);
  });

  it('start sweeps at once and then every interval; with nothing to sweep it starts no timer', async () => {
    const idle = new Retention(silentLogger(), [sweep('logs', 0, 0)], { intervalMs: 5 });
    idle.start();
    await idle.stop();
    const runs = sweep('runs', 1, 0);
    const r = new Retention(silentLogger(), [runs], { intervalMs: 5, now: () => NOW });
    r.start();
    try {
      assert.equal(runs.cutoffs.length, 1, 'the sweep at start');
      const deadline = Date.now() + 5000;
      while (runs.cutoffs.length < 3) {
        assert.ok(Date.now() < deadline, 'no later sweeps');
        await new Promise((res) => setTimeout(res, 5));
      }
    } finally {
      await r.stop();
    }
    const n = runs.cutoffs.length;
    await new Promise((res) => setTimeout(res, 30));
    assert.equal(runs.cutoffs.length, n, 'nothing after stop');
  });
});
