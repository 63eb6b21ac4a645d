import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { silentLogger } from '../src/logger.js';
import { JobLogs } from '../src/services/job-logs.js';
import { createHarness, type Harness } from './helpers/harness.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;

interface SseEvent {
  event: string;
  id?: string;
  data: any;
}

/** The app on a real loopback port, with the server side of every connection visible. */
async function listen(h: Harness): Promise<{ port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  h.app.server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (h.app.server.address() as AddressInfo).port, sockets };
}

/** A raw follower that sends the SSE request, waits for the stream to start and then never reads. */
function openStuck(port: number, token: string, id: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.once('error', reject);
    s.write(`GET /api/v1/mags-jobs/${id}/logs?follow=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    let got = '';
    const onData = (chunk: Buffer) => {
      got += chunk.toString('latin1');
      if (!got.includes('following job')) return;
      s.off('data', onData);
      s.pause();
      resolve(s);
    };
    s.on('data', onData);
  });
}

/** An HTTP follower whose reading the test controls (pause/resume), parsing events as they come. */
class Follower {
  readonly events: SseEvent[] = [];
  res!: IncomingMessage;
  closed!: Promise<void>;
  private buf = '';

  static async open(port: number, token: string, id: string, query = '', headers: Record<string, string> = {}): Promise<Follower> {
    const f = new Follower();
    f.res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: `/api/v1/mags-jobs/${id}/logs?follow=1${query}`, headers: { authorization: `Bearer ${token}`, ...headers } });
      req.once('response', resolve);
      req.once('error', reject);
      req.end();
    });
    assert.equal(f.res.statusCode, 200);
    f.res.setEncoding('utf8');
    f.closed = new Promise((resolve) => {
      f.res.once('close', resolve);
      f.res.once('error', () => resolve());
    });
    f.res.on('data', (chunk: string) => f.take(chunk));
    return f;
  }

  lines(): SseEvent[] {
    return this.events.filter((e) => e.event === 'log');
  }

  private take(chunk: string): void {
    this.buf += chunk;
    let i: number;
    while ((i = this.buf.indexOf('\n\n')) >= 0) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      const ev: SseEvent = { event: 'message', data: undefined };
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) ev.event = line.slice(7);
        else if (line.startsWith('id: ')) ev.id = line.slice(4);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) {
        ev.data = JSON.parse(data);
        this.events.push(ev);
      }
    }
  }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function memory(): { heapAndExternal: number; rss: number } {
  gc();
  const m = process.memoryUsage();
  return { heapAndExternal: m.heapUsed + m.external, rss: m.rss };
}

function bufferedBytes(sockets: Set<Socket>): number {
  let n = 0;
  for (const s of sockets) n += s.writableLength;
  return n;
}

/** Asserts that the followed messages are exactly `from..to` (the script printed `seq from to`), once each, in order. */
function assertSequence(messages: string[], from: number, to: number): void {
  assert.equal(messages.length, to - from + 1, `expected ${to - from + 1} lines, got ${messages.length}`);
  for (let i = 0; i < messages.length; i++) {
    if (Number(messages[i]) !== from + i) assert.fail(`line ${i}: expected ${from + i}, got ${messages[i]}`);
  }
}

describe('log followers over real TCP: back-pressure, cut-off, resume, no leaks', () => {
  let h: Harness;
  let port: number;
  let sockets: Set<Socket>;
  let dir: string;
  const submit = async (script: string): Promise<string> => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: { authorization: `Bearer ${h.adminToken}` }, payload: { script, type: 'inline' } });
    assert.equal(res.statusCode, 202, res.body);
    return (res.json() as { request_id: string }).request_id;
  };
  const gated = (name: string, rest: string) => `while [ ! -e ${join(dir, name)} ]; do sleep 0.05; done; ${rest}`;
  const open = (name: string) => writeFile(join(dir, name), '');

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mags-sse-'));
    h = await createHarness({ maxOutputBytes: 64 * MiB, jobTimeoutSeconds: 300 });
    ({ port, sockets } = await listen(h));
  });
  after(async () => {
    await h?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('ten followers that never read: the server buffers a bounded amount, not the stream', async (t) => {
    // 104,000 lines of 101 bytes: ~10 MiB of output, ~17 MiB of SSE per follower.
    const id = await submit(gated('mem', "seq -f '%0100g' 1 104000"));
    const stuck: Socket[] = [];
    try {
      for (let i = 0; i < 10; i++) stuck.push(await openStuck(port, h.adminToken, id));
      await waitFor('10 followers', () => h.logs.followerCount() === 10);
      const start = memory();
      await open('mem');
      const done = await h.waitDone(h.adminToken, id, 180_000);
      assert.equal(done.status, 'completed');
      // Let the followers push whatever they still can, until the buffered total stops changing.
      let last = -1;
      for (let stable = 0; stable < 5; ) {
        await new Promise((r) => setTimeout(r, 200));
        const now = bufferedBytes(sockets);
        stable = now === last ? stable + 1 : 0;
        last = now;
      }
      const end = memory();
      const growth = end.heapAndExternal - start.heapAndExternal;
      const buffered = bufferedBytes(sockets);
      t.diagnostic(
        `heap+external growth ${(growth / MiB).toFixed(1)} MiB, rss growth ${((end.rss - start.rss) / MiB).toFixed(1)} MiB, ` +
          `bytes queued on the 10 server sockets ${(buffered / MiB).toFixed(2)} MiB`,
      );
      assert.ok(buffered < 10 * 256 * 1024, `server sockets queue ${buffered} bytes`);
      assert.ok(growth < 40 * MiB, `heap+external grew by ${(growth / MiB).toFixed(1)} MiB`);
      assert.equal(h.logs.followerCount(), 10, 'the stuck followers are still open');
    } finally {
      for (const s of stuck) s.destroy();
    }
    await waitFor('followers to unsubscribe', () => h.logs.followerCount() === 0);
    await waitFor('server sockets to close', () => sockets.size === 0);
  });

  it('a slow reader gets every line once, in order, across a pause and a resume with Last-Event-ID', async () => {
    const total = 60_000;
    const id = await submit(gated('slow', `seq 1 ${total}`));
    let first: Follower | undefined;
    let second: Follower | undefined;
    try {
      first = await Follower.open(port, h.adminToken, id);
      // Slow: a break every few chunks, and one long pause early on.
      let paused = false;
      let chunks = 0;
      let tookLongPause = false;
      first.res.on('data', () => {
        if (paused || ++chunks % 8 !== 0) return;
        first!.res.pause();
        const long = !tookLongPause && first!.lines().length > 2000;
        tookLongPause ||= long;
        paused = true;
        setTimeout(() => {
          paused = false;
          first!.res.resume();
        }, long ? 1200 : 5);
      });
      await open('slow');
      await waitFor('a third of the lines', () => first!.lines().length >= total / 3, 60_000);
      first.res.destroy();
      await first.closed;
      const seen = first.lines();
      const lastId = seen.at(-1)!.id!;
      assert.equal(lastId, String(seen.at(-1)!.data.seq));
      second = await Follower.open(port, h.adminToken, id, '', { 'last-event-id': lastId });
      await second.closed;
      assert.equal(second.events.at(-1)?.event, 'end', 'the resumed stream ends with end');
      assertSequence([...seen, ...second.lines()].map((e) => e.data.message), 1, total);
      assert.deepEqual([...seen, ...second.lines()].map((e) => e.data.seq).slice(0, 3), [1, 2, 3]);
    } finally {
      first?.res.destroy();
      second?.res.destroy();
    }
    await waitFor('followers to unsubscribe', () => h.logs.followerCount() === 0);
  });

  it('followers that disconnect while the job runs, one of them blocked on a full socket, free their subscriptions', async () => {
    const id = await submit(`seq -f '%0100g' 1 60000; ${gated('leak', 'echo done')}`);
    const stuck = await openStuck(port, h.adminToken, id);
    const reading = await Follower.open(port, h.adminToken, id);
    try {
      await waitFor('the reader to see every line', () => reading.lines().length === 60_000, 60_000);
      assert.equal(h.logs.followerCount(), 2);
      stuck.destroy();
      reading.res.destroy();
      await waitFor('followers to unsubscribe', () => h.logs.followerCount() === 0);
      await waitFor('server sockets to close', () => sockets.size === 0);
    } finally {
      stuck.destroy();
      reading.res.destroy();
      await open('leak');
    }
    assert.equal((await h.waitDone(h.adminToken, id)).status, 'completed');
  });

  it('GET logs without follow reads the store page by page and still answers every line', async () => {
    const total = 25_000;
    const id = await submit(`seq 1 ${total}`);
    await h.waitDone(h.adminToken, id);
    const limits: number[] = [];
    const getLogs = h.stores.logs.read.bind(h.stores.logs);
    h.stores.logs.read = (jobId: string, afterSeq: number, limit: number) => {
      limits.push(limit);
      return getLogs(jobId, afterSeq, limit);
    };
    try {
      const all = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${id}/logs`, headers: { authorization: `Bearer ${h.adminToken}` } });
      assert.equal(all.statusCode, 200);
      assert.match(String(all.headers['content-type']), /^application\/json/);
      const logs = (all.json() as { logs: Array<{ message: string; seq: number }> }).logs;
      assertSequence(logs.map((l) => l.message), 1, total);
      assert.ok(limits.length > 1 && Math.max(...limits) <= 5000, `store read with limits ${limits.join(',')}`);
      const some = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${id}/logs?after=10&limit=5`, headers: { authorization: `Bearer ${h.adminToken}` } });
      assertSequence((some.json() as { logs: Array<{ message: string }> }).logs.map((l) => l.message), 11, 15);
    } finally {
      h.stores.logs.read = getLogs;
    }
  });
});

describe('a follower that stays behind is cut off with a resumable position', () => {
  let h: Harness;
  let port: number;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mags-sse-'));
    h = await createHarness({ maxOutputBytes: 64 * MiB, jobTimeoutSeconds: 300, sseStallMs: 1500 });
    ({ port } = await listen(h));
  });
  after(async () => {
    await h?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('ends the stream with event behind {after}, and after= resumes from there to the end', async () => {
    const total = 80_000;
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: { authorization: `Bearer ${h.adminToken}` }, payload: { script: `seq 1 ${total}`, type: 'inline' } });
    const id = (res.json() as { request_id: string }).request_id;
    let lagging: Follower | undefined;
    let resumed: Follower | undefined;
    try {
      lagging = await Follower.open(port, h.adminToken, id);
      lagging.res.pause();
      await waitFor('the follower to subscribe', () => h.logs.followerCount() === 1);
      assert.equal((await h.waitDone(h.adminToken, id, 60_000)).status, 'completed');
      // The server gives up on the stalled socket and drops its subscription; then the client reads what was sent.
      await waitFor('the server to cut the follower off', () => h.logs.followerCount() === 0, 10_000);
      lagging.res.resume();
      await lagging.closed;
      const last = lagging.events.at(-1)!;
      assert.equal(last.event, 'behind', `last event: ${JSON.stringify(last)}`);
      const got = lagging.lines();
      assert.ok(got.length > 0 && got.length < total, `the lagging follower got ${got.length} lines`);
      assertSequence(got.map((e) => e.data.message), 1, got.length);
      assert.equal(last.data.after, got.length);
      assert.equal(last.id, String(got.length));

      resumed = await Follower.open(port, h.adminToken, id, `&after=${last.data.after}`);
      await resumed.closed;
      assert.equal(resumed.events.at(-1)?.event, 'end');
      assertSequence([...got, ...resumed.lines()].map((e) => e.data.message), 1, total);
    } finally {
      lagging?.res.destroy();
      resumed?.res.destroy();
    }
  });
});

describe('JobLogs.read while a batch is being written', () => {
  let h: Harness;
  before(async () => {
    h = await createHarness();
  });
  after(async () => {
    await h?.close();
  });

  it('never returns a later line without the earlier ones that moved to the store meanwhile', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: { authorization: `Bearer ${h.adminToken}` }, payload: { script: 'true', type: 'inline' } });
    const id = (res.json() as { request_id: string }).request_id;
    await h.waitDone(h.adminToken, id);
    const logs = new JobLogs(h.stores.logs, silentLogger(), { flushIntervalMs: 60_000 });
    await logs.open(id);
    const before = (await h.stores.logs.read(id, 0, 1000)).length;
    for (const m of ['a', 'b', 'c']) logs.append(id, 'stdout', m);
    const getLogs = h.stores.logs.read.bind(h.stores.logs);
    // The store answers from before the batch is written; the batch lands and a new line is
    // buffered before the reader looks at the buffer again.
    h.stores.logs.read = async (jobId: string, afterSeq: number, limit: number) => {
      const answer = await getLogs(jobId, afterSeq, limit);
      await logs.flush();
      logs.append(id, 'stdout', 'd');
      return answer;
    };
    try {
      const got = await logs.read(id, before, 100);
      assert.deepEqual(got.map((l) => l.message), ['a', 'b', 'c']);
    } finally {
      h.stores.logs.read = getLogs;
      await logs.flush();
    }
    assert.deepEqual((await logs.read(id, before, 100)).map((l) => l.message), ['a', 'b', 'c', 'd']);
  });
});

describe('server shutdown with a follower blocked on a full socket', () => {
  it('ends the stream at once instead of waiting for the client to read', async () => {
    const h = await createHarness({ maxOutputBytes: 64 * MiB, jobTimeoutSeconds: 300 });
    let stuck: Socket | undefined;
    let closed = false;
    try {
      const { port, sockets } = await listen(h);
      const res = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: { authorization: `Bearer ${h.adminToken}` }, payload: { script: "seq -f '%0100g' 1 60000", type: 'inline' } });
      const id = (res.json() as { request_id: string }).request_id;
      stuck = await openStuck(port, h.adminToken, id);
      assert.equal((await h.waitDone(h.adminToken, id, 60_000)).status, 'completed');
      await waitFor('the server side to be blocked on the socket', () => [...sockets].some((s) => s.writableNeedDrain));
      assert.equal(h.logs.followerCount(), 1);
      const started = Date.now();
      h.logs.shutdownFollowers();
      await waitFor('the blocked follower to stop', () => h.logs.followerCount() === 0, 5000);
      await waitFor('its socket to be ended', () => [...sockets].every((s) => s.writableEnded || s.destroyed), 5000);
      await h.close();
      closed = true;
      const took = Date.now() - started;
      assert.ok(took < 10_000, `shutdown took ${took} ms`);
    } finally {
      stuck?.destroy();
      if (!closed) await h.close();
    }
  });
});
