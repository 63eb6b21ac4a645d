import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PassLoop } from '../src/pass-loop.js';
import { FakeClock } from './helpers/fake-clock.js';

const T0 = Date.parse('2026-06-01T10:00:00Z');
const MAX = 60_000;

/** A promise the test resolves or rejects. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets pending promise callbacks run. */
const settleMicrotasks = () => new Promise<void>((r) => setImmediate(r));

/**
 * A loop whose rounds and settles the test controls: each round waits for `release()` unless
 * `auto` is set; `more` answers of rounds (true: a full batch) are taken in order.
 */
function harness(o: { auto?: boolean; more?: boolean[]; next?: () => string | undefined; roundError?: Error; onSettle?: () => void } = {}) {
  const clock = new FakeClock(T0);
  let rounds = 0;
  let settles = 0;
  const failures: unknown[] = [];
  const gates: Array<ReturnType<typeof deferred<void>>> = [];
  const more = [...(o.more ?? [])];
  const loop = new PassLoop({
    clock,
    maxSleepMs: MAX,
    round: async () => {
      rounds++;
      if (o.roundError) throw o.roundError;
      if (!o.auto) {
        const gate = deferred<void>();
        gates.push(gate);
        await gate.promise;
      }
      return more.shift() ?? false;
    },
    settle: async () => {
      settles++;
      o.onSettle?.();
      return o.next?.();
    },
    failed: (err) => failures.push(err),
  });
  return {
    clock,
    loop,
    failures,
    get rounds() {
      return rounds;
    },
    get settles() {
      return settles;
    },
    /** Lets the oldest waiting round finish. */
    async release() {
      await settleMicrotasks();
      const gate = gates.shift();
      assert.ok(gate, 'a round is waiting');
      gate.resolve();
      await settleMicrotasks();
    },
  };
}

describe('PassLoop (fake clock)', () => {
  it('runs one pass at a time: calls while it runs make it go round once more, and share its promise', async () => {
    const h = harness();
    h.loop.start();
    const first = h.loop.pass();
    const second = h.loop.pass();
    const third = h.loop.pass();
    assert.equal(second, first, 'the running pass answers the later calls');
    assert.equal(third, first);
    await h.release();
    assert.equal(h.rounds, 2, 'one more round for all the calls that came while the first ran');
    let done = false;
    void first.then(() => (done = true));
    await settleMicrotasks();
    assert.equal(done, false, 'the pass is not done before the extra round');
    await h.release();
    await first;
    assert.equal(h.rounds, 2);
    assert.equal(h.settles, 1, 'settled once, after the last round');
    await h.loop.stop();
  });

  it('goes round again while a round answers that it handled a full batch', async () => {
    const h = harness({ auto: true, more: [true, true, false] });
    h.loop.start();
    await h.loop.pass();
    assert.equal(h.rounds, 3);
    assert.equal(h.settles, 1);
    await h.loop.stop();
  });

  it('sleeps until the next due time settle names, at most maxSleepMs, at once when it is past', async () => {
    /** When the timer is armed after the first pass of a loop whose settle answers `next`. */
    const armedAfterPass = async (next: string | undefined) => {
      const h = harness({ auto: true, next: () => next });
      h.loop.start();
      h.clock.set(T0);
      await h.loop.idle();
      assert.equal(h.rounds, 1);
      const at = h.clock.nextTimerAt();
      await h.loop.stop();
      return at;
    };
    assert.equal(await armedAfterPass(new Date(T0 + 5000).toISOString()), T0 + 5000);
    assert.equal(await armedAfterPass(new Date(T0 + 10 * MAX).toISOString()), T0 + MAX, 'capped at maxSleepMs');
    assert.equal(await armedAfterPass(undefined), T0 + MAX, 'nothing due: maxSleepMs');
    assert.equal(await armedAfterPass(new Date(T0 - 1000).toISOString()), T0, 'already due: at once');
    assert.equal(await armedAfterPass('not a time'), T0 + MAX, 'an unreadable time: maxSleepMs');
  });

  it('the timer runs the passes: kick, wakeIn and idle', async () => {
    const h = harness({ auto: true, next: () => undefined });
    h.loop.start();
    assert.equal(h.clock.nextTimerAt(), T0, 'start kicks a pass now');
    h.clock.set(T0);
    await h.loop.idle();
    assert.equal(h.rounds, 1);
    assert.equal(h.clock.nextTimerAt(), T0 + MAX);
    h.loop.wakeIn(2000);
    assert.equal(h.clock.nextTimerAt(), T0 + 2000, 'an earlier wake-up replaces the later one');
    h.loop.wakeIn(5000);
    assert.equal(h.clock.nextTimerAt(), T0 + 2000, 'a later one does not move it');
    h.clock.set(T0 + 2000);
    await h.loop.idle();
    assert.equal(h.rounds, 2);
    h.loop.kick();
    h.clock.set(T0 + 2000);
    await h.loop.idle();
    assert.equal(h.rounds, 3);
    await h.loop.stop();
  });

  it('a call while the pass settles makes it go round again before it sleeps', async () => {
    let loop: PassLoop | undefined;
    let asked = false;
    let again: Promise<void> | undefined;
    const h = harness({
      auto: true,
      onSettle: () => {
        if (asked) return;
        asked = true;
        again = loop!.pass();
      },
    });
    loop = h.loop;
    h.loop.start();
    const p = h.loop.pass();
    await p;
    assert.equal(again, p);
    assert.equal(h.rounds, 2, 'the work stored during settle was looked at');
    assert.equal(h.settles, 2);
    await h.loop.stop();
  });

  it('a failed pass is reported and retried after maxSleepMs, not at once', async () => {
    const boom = new Error('database gone');
    const h = harness({ auto: true, roundError: boom });
    h.loop.start();
    h.clock.set(T0);
    await h.loop.idle();
    assert.deepEqual(h.failures, [boom]);
    assert.equal(h.clock.nextTimerAt(), T0 + MAX);
    assert.equal(h.settles, 0);
    // The loop is not stuck: the next pass runs.
    const again = h.loop.pass();
    await again;
    assert.equal(h.failures.length, 2);
    await h.loop.stop();
  });

  it('stop waits for the pass the timer started, and nothing runs or is armed afterwards', async () => {
    const h = harness();
    h.loop.start();
    h.clock.set(T0);
    let stopped = false;
    const stopping = h.loop.stop().then(() => (stopped = true));
    await settleMicrotasks();
    assert.equal(stopped, false, 'stop waits for the running pass');
    await h.release();
    await stopping;
    assert.equal(h.settles, 0, 'a stopped loop does not settle (nor arm the timer)');
    assert.equal(h.clock.timers.size, 0);
    h.loop.kick();
    h.loop.wakeIn(10);
    assert.equal(h.clock.timers.size, 0, 'kick and wakeIn do nothing while stopped');
    h.clock.set(T0 + MAX * 10);
    assert.equal(h.rounds, 1);
  });
});
