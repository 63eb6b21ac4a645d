/**
 * Output flow control of the guest protocol, host side (docs/guest-agent.md, "Limits and
 * back-pressure"): the credit logic alone, then GuestConnection against a stand-in guest that
 * records the grants it gets. The real guest agent is exercised in guest-frames.test.ts.
 */
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { GRANT_STEP, GuestConnection, OutputCredit } from '../src/guest/client.js';
import { EXEC_LOG_FILE, EXEC_OUTPUT_WINDOW, FrameReader, GUEST_MAX_PAYLOAD, OUTPUT_WINDOW, decodeExec, decodeGrant, encodeFrame, type Frame } from '../src/guest/frame.js';

describe('OutputCredit', () => {
  it('grants back what was delivered, in batches of the step', () => {
    const grants: number[] = [];
    const c = new OutputCredit((n) => grants.push(n), 100);
    c.delivered(60);
    assert.deepEqual(grants, []);
    assert.equal(c.outstanding, 60);
    c.delivered(60);
    assert.deepEqual(grants, [120]);
    assert.equal(c.outstanding, 0);
  });

  it('grants nothing while paused and everything taken on resume', () => {
    const grants: number[] = [];
    const c = new OutputCredit((n) => grants.push(n), 100);
    c.pause();
    for (let i = 0; i < 10; i++) c.delivered(100);
    assert.deepEqual(grants, []);
    assert.equal(c.outstanding, 1000);
    assert.equal(c.paused, true);
    c.resume();
    assert.deepEqual(grants, [1000]);
    assert.equal(c.paused, false);
    c.resume();
    assert.deepEqual(grants, [1000], 'a second resume grants nothing more');
  });

  it('a resume below the step keeps the rest for later (the guest still holds credit)', () => {
    const grants: number[] = [];
    const c = new OutputCredit((n) => grants.push(n), 100);
    c.pause();
    c.delivered(30);
    c.resume();
    assert.deepEqual(grants, []);
    c.delivered(70);
    assert.deepEqual(grants, [100]);
  });

  it('the default step leaves the guest credit at every moment a consumer keeps up', () => {
    assert.ok(GRANT_STEP > 0 && GRANT_STEP < OUTPUT_WINDOW);
  });
});

/** A stand-in guest: records the host's frames, sends the frames a test gives it. */
function fakeGuest() {
  const fromHost: Frame[] = [];
  const reader = new FrameReader(GUEST_MAX_PAYLOAD);
  const guest = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      fromHost.push(...reader.push(chunk));
      cb();
    },
  });
  const conn = new GuestConnection(guest);
  guest.push(encodeFrame('H', 0, Buffer.from('mags-guest 1')));
  const grants = (chan: number) => fromHost.filter((f) => f.type === 'G' && f.channel === chan).reduce((sum, f) => sum + decodeGrant(f.payload)!.count, 0);
  return { conn, fromHost, grants, send: (type: string, chan: number, payload?: Buffer) => guest.push(encodeFrame(type, chan, payload)) };
}

const tick = () => new Promise((ok) => setImmediate(ok));

describe('GuestConnection: output window', () => {
  it('asks for an output window on every channel whose output comes back, not for a log file', async () => {
    const g = fakeGuest();
    await g.conn.hello;
    g.conn.spawn({ argv: ['/bin/true'] }, () => undefined);
    g.conn.spawn({ argv: ['/bin/true'], logFile: '/tmp/x.log' }, () => undefined);
    await tick();
    const execs = g.fromHost.filter((f) => f.type === 'X').map((f) => decodeExec(f.payload)!.flags);
    assert.equal(execs[0]! & EXEC_OUTPUT_WINDOW, EXEC_OUTPUT_WINDOW);
    assert.equal(execs[1]! & (EXEC_OUTPUT_WINDOW | EXEC_LOG_FILE), EXEC_LOG_FILE);
    g.conn.close();
  });

  it('grants delivered output back; a paused process gets no grant until it is resumed', async () => {
    const g = fakeGuest();
    await g.conn.hello;
    let got = 0;
    const proc = g.conn.spawn({ argv: ['/usr/bin/yes'] }, (_s, d) => (got += d.length));
    const chunk = Buffer.alloc(64 * 1024, 0x79);
    for (let i = 0; i < 8; i++) g.send('O', proc.channel, chunk);
    await tick();
    assert.equal(got, 8 * chunk.length);
    assert.equal(g.grants(proc.channel), 8 * chunk.length, 'everything taken is granted back');

    proc.pause!();
    for (let i = 0; i < 16; i++) g.send(i % 2 ? 'E' : 'O', proc.channel, chunk);
    await tick();
    assert.equal(got, 24 * chunk.length, 'output in flight is still delivered');
    assert.equal(g.grants(proc.channel), 8 * chunk.length, 'no grant while paused');

    proc.resume!();
    await tick();
    assert.equal(g.grants(proc.channel), 24 * chunk.length);
    g.send('X', proc.channel, Buffer.from([0, 0, 0, 0, 0]));
    assert.deepEqual(await proc.exited, { code: 0, signal: null });
    g.conn.close();
  });

  it('pausing one channel leaves the others granted', async () => {
    const g = fakeGuest();
    await g.conn.hello;
    const a = g.conn.spawn({ argv: ['/a'] }, () => undefined);
    const b = g.conn.spawn({ argv: ['/b'] }, () => undefined);
    a.pause!();
    for (let i = 0; i < 4; i++) {
      g.send('O', a.channel, Buffer.alloc(GRANT_STEP));
      g.send('O', b.channel, Buffer.alloc(GRANT_STEP));
    }
    await tick();
    assert.equal(g.grants(a.channel), 0);
    assert.equal(g.grants(b.channel), 4 * GRANT_STEP);
    g.conn.close();
  });
});
