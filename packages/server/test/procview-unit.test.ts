/**
 * ProcViewRepair without sandboxes: which sandboxes a pass repairs after an lxcfs restart, that a
 * failing sandbox never stops the others, that passes never overlap and that a sandbox torn down
 * meanwhile is dropped. The helper is a recording double; limits-view.test.ts runs the real one in
 * real sandboxes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProcViewRepair } from '../src/runtime/drivers/container/procview.js';
import { testLog } from './conformance/runtime.js';

const FILES = [
  { source: '/run/mags/x/lxcfs/proc/meminfo', destination: '/proc/meminfo' },
  { source: '/run/mags/x/lxcfs/proc/uptime', destination: '/proc/uptime' },
];

function setup(opts: { fail?: Set<string>; delayMs?: number; notInit?: Set<string>; retryMs?: number } = {}) {
  const view = { active: false, generation: 1, files: () => (view.active ? FILES : []) };
  const calls: string[][] = [];
  const pidToId = new Map<string, string>();
  const repair = new ProcViewRepair({
    view,
    log: testLog,
    helper: async (args) => {
      calls.push(args);
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      if (opts.fail?.has(pidToId.get(args[1]!)!)) throw new Error('mags-guest: setns /proc/1/ns/mnt: Operation not permitted');
    },
    isSandboxInit: async (pid, id) => !opts.notInit?.has(id) && pidToId.get(String(pid)) === id,
    retryMs: opts.retryMs ?? 60_000,
  });
  const track = (id: string, pid: number, generation: number) => {
    pidToId.set(String(pid), id);
    return repair.track(id, pid, generation);
  };
  return { view, calls, repair, track };
}

describe('ProcViewRepair', () => {
  it('mounts the new files into every sandbox of an older generation or none, in one helper call each', async () => {
    const { view, calls, repair, track } = setup();
    await track('a', 101, 1);
    await track('b', 102, 0);
    view.active = true;
    view.generation = 2;
    await track('c', 103, 2);
    assert.equal(calls.length, 0, 'a sandbox created with the live view needs nothing');
    const report = await repair.repairAll();
    assert.deepEqual(report.repaired.sort(), ['a', 'b']);
    assert.deepEqual(report.failed, []);
    assert.deepEqual(calls.find((c) => c[1] === '101'), ['procview', '101', FILES[0]!.source, '/proc/meminfo', FILES[1]!.source, '/proc/uptime']);
    assert.equal(calls.length, 2);
    for (const id of ['a', 'b', 'c']) assert.equal(repair.generationOf(id), 2);
    assert.equal((await repair.repairAll()).repaired.length, 0, 'nothing left to repair');
  });

  it('a sandbox that fails is reported and stays stale; the others are repaired and the next pass retries it', async () => {
    const fail = new Set(['b']);
    const { view, calls, repair, track } = setup({ fail });
    for (const [i, id] of ['a', 'b', 'c', 'd', 'e', 'f'].entries()) await track(id, 200 + i, 1);
    view.active = true;
    view.generation = 2;
    const report = await repair.repairAll();
    assert.deepEqual(report.repaired.sort(), ['a', 'c', 'd', 'e', 'f']);
    assert.deepEqual(report.failed.map((f) => f.id), ['b']);
    assert.match(report.failed[0]!.error, /setns/);
    assert.equal(repair.generationOf('b'), 1);
    fail.clear();
    calls.length = 0;
    assert.deepEqual((await repair.repairAll()).repaired, ['b']);
    assert.equal(calls.length, 1);
  });

  it('a pass that left failures runs again by itself after retryMs; settled() cancels a pending retry', async () => {
    const fail = new Set(['b']);
    const { view, repair, track } = setup({ fail, retryMs: 30 });
    await track('a', 401, 1);
    await track('b', 402, 1);
    view.active = true;
    view.generation = 2;
    assert.deepEqual((await repair.repairAll()).failed.map((f) => f.id), ['b']);
    fail.clear();
    for (const end = Date.now() + 2000; repair.generationOf('b') !== 2 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
    assert.equal(repair.generationOf('b'), 2, 'the retry repaired it without a restart of lxcfs');
    fail.add('a');
    view.generation = 3;
    assert.deepEqual((await repair.repairAll()).failed.map((f) => f.id), ['a']);
    await repair.settled();
    fail.clear();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(repair.generationOf('a'), 2, 'no pass after settled()');
  });

  it('a pid that is no longer the sandbox init is not entered', async () => {
    const { view, calls, repair, track } = setup({ notInit: new Set(['a']) });
    await track('a', 301, 1);
    view.active = true;
    view.generation = 2;
    const report = await repair.repairAll();
    assert.equal(calls.length, 0);
    assert.match(report.failed[0]!.error, /no longer the sandbox's PID 1/);
  });

  it('passes never overlap: a restart during a pass runs one more pass, each sandbox is entered once per generation', async () => {
    const { view, calls, repair, track } = setup({ delayMs: 30 });
    for (const [i, id] of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].entries()) await track(id, 400 + i, 1);
    view.active = true;
    view.generation = 2;
    const first = repair.repairAll();
    const second = repair.repairAll();
    await Promise.all([first, second]);
    assert.equal(calls.length, 8);
    view.generation = 3;
    const third = repair.repairAll();
    await new Promise((r) => setTimeout(r, 5));
    view.generation = 4; // lxcfs restarted again while the pass runs
    const fourth = repair.repairAll();
    const report = await fourth;
    await third;
    assert.equal(report.generation, 4);
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) assert.equal(repair.generationOf(id), 4);
  });

  it('a sandbox torn down while its helper runs is dropped, not reported', async () => {
    const fail = new Set(['a']);
    const { view, repair, track } = setup({ fail, delayMs: 20 });
    await track('a', 501, 1);
    view.active = true;
    view.generation = 2;
    const pass = repair.repairAll();
    repair.forget('a');
    const report = await pass;
    assert.deepEqual(report.failed, []);
    assert.equal(repair.generationOf('a'), undefined);
  });

  it('nothing happens while lxcfs is down; a sandbox tracked with a stale view after the restart is repaired before track() resolves', async () => {
    const { view, calls, repair, track } = setup();
    await track('a', 601, 1);
    view.generation = 2; // dead: not active
    assert.equal((await repair.repairAll()).repaired.length, 0);
    assert.equal(calls.length, 0);
    view.active = true;
    await track('b', 602, 1);
    assert.equal(repair.generationOf('b'), 2);
    assert.equal(repair.generationOf('a'), 2, 'the pass took every stale sandbox');
  });

  it('settled() resolves only once the pass under way ended (shutdown waits for it)', async () => {
    const { view, calls, repair, track } = setup({ delayMs: 40 });
    await track('a', 701, 1);
    view.active = true;
    view.generation = 2;
    void repair.repairAll();
    await repair.settled();
    assert.equal(calls.length, 1);
    assert.equal(repair.generationOf('a'), 2, 'the pass had finished');
    await repair.settled(); // nothing running: at once
  });
});
