/**
 * The guest protocol's golden frames (native/test/frames.json), checked by both implementations:
 * the host's (src/guest/frame.ts) here, the guest agent's (native/frame.c) by native/test/frames-test.c,
 * which this file builds and runs. Then the real guest agent binary (`mags-guest host`, no root
 * needed) against the host end: hello, stdin over several frames, and the limits.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { GuestConnection } from '../src/guest/client.js';
import {
  FrameReader,
  FrameTooLargeError,
  GUEST_MAX_PAYLOAD,
  HOST_MAX_PAYLOAD,
  OUTPUT_WINDOW,
  PROTOCOL_VERSION,
  ToGuest,
  ToHost,
  decodeExec,
  decodeExit,
  decodeFrame,
  decodeGrant,
  decodeKill,
  decodeResize,
  decodeStarted,
  encodeExec,
  encodeExit,
  encodeFrame,
  encodeGrant,
  encodeKill,
  encodeResize,
  encodeStarted,
  parseHello,
  type ExecPayload,
  type Frame,
} from '../src/guest/frame.js';
import { NATIVE_DIR, buildGuestAgent } from '../src/runtime/drivers/container/driver.js';

const execFileP = promisify(execFile);
const FRAMES_JSON = fileURLToPath(new URL('../../native/test/frames.json', import.meta.url));
const PROTOCOL_DOC = fileURLToPath(new URL('../../../../docs/guest-agent.md', import.meta.url));

type Fields = Record<string, unknown>;
interface Vector {
  name: string;
  direction: 'host-to-guest' | 'guest-to-host';
  hex: string;
  fill?: { byte: number; count: number };
  result: 'frame' | 'incomplete' | 'too_large';
  type?: string;
  channel?: number;
  length?: number;
  fields?: Fields;
}
interface FramesFile {
  limits: { hostMaxPayload: number; guestMaxPayload: number };
  vectors: Vector[];
}

const file = JSON.parse(await readFile(FRAMES_JSON, 'utf8')) as FramesFile;

function withFill(hex: string, fill?: Vector['fill']): Buffer {
  const head = Buffer.from(hex, 'hex');
  return fill ? Buffer.concat([head, Buffer.alloc(fill.count, fill.byte)]) : head;
}

/** The receiver's limit: the guest's for frames the host sends, the host's for the others. */
const limitFor = (v: Vector) => (v.direction === 'host-to-guest' ? GUEST_MAX_PAYLOAD : HOST_MAX_PAYLOAD);

/** Decodes a payload as its receiver does: the fields, or { malformed: true }. */
function decodePayload(v: Vector, f: Frame): Fields {
  const malformed = { malformed: true };
  if (v.direction === 'host-to-guest') {
    switch (f.type) {
      case 'X': {
        const e = decodeExec(f.payload);
        return e ? { ...e } : malformed;
      }
      case 'C':
        return {};
      case 'W':
        return decodeResize(f.payload) ?? malformed;
      case 'K':
        return decodeKill(f.payload) ?? malformed;
      case 'G':
        return decodeGrant(f.payload) ?? malformed;
    }
  } else {
    switch (f.type) {
      case 'H':
        return { text: f.payload.toString() };
      case 'S':
        return decodeStarted(f.payload) ?? malformed;
      case 'X':
        return decodeExit(f.payload) ?? malformed;
    }
  }
  // stdin, stdout, stderr, ping/pong and types the receiver does not know: raw data.
  return { data: f.payload.subarray(0, f.payload.length - (v.fill?.count ?? 0)).toString('hex') };
}

/** Encodes a vector's fields as the sender does. */
function encodePayload(v: Vector, fields: Fields): Buffer {
  const n = (k: string) => fields[k] as number;
  if (v.direction === 'host-to-guest') {
    switch (v.type) {
      case 'X':
        return encodeExec(fields as unknown as ExecPayload);
      case 'C':
        return Buffer.alloc(0);
      case 'W':
        return encodeResize(n('cols'), n('rows'));
      case 'K':
        return encodeKill(n('signal'), n('scope') as 0 | 1);
      case 'G':
        return encodeGrant(n('count'));
    }
  } else {
    switch (v.type) {
      case 'H':
        return Buffer.from(fields.text as string);
      case 'S':
        return encodeStarted(n('pid'));
      case 'X':
        return encodeExit(n('kind') as 0 | 1, n('value'));
    }
  }
  return withFill(fields.data as string, v.fill);
}

describe('guest protocol: golden frames, host side', () => {
  it('the limits are the ones the vectors were written for', () => {
    assert.equal(file.limits.hostMaxPayload, HOST_MAX_PAYLOAD);
    assert.equal(file.limits.guestMaxPayload, GUEST_MAX_PAYLOAD);
    assert.ok(file.vectors.length >= 30);
  });

  for (const v of file.vectors) {
    it(`${v.direction}: ${v.name}`, () => {
      const bytes = withFill(v.hex, v.fill);
      const r = decodeFrame(bytes, limitFor(v));
      assert.equal(r.kind, v.result);
      if (r.kind === 'too_large') {
        assert.equal(r.length, v.length);
        assert.deepEqual(encodeFrame(v.type!, v.channel!).subarray(0, 5), bytes.subarray(0, 5));
        assert.throws(() => new FrameReader(limitFor(v)).push(bytes), FrameTooLargeError);
        return;
      }
      if (r.kind === 'incomplete') {
        assert.deepEqual(new FrameReader(limitFor(v)).push(bytes), []);
        return;
      }
      assert.equal(r.kind, 'frame');
      const f = r.frame;
      assert.deepEqual({ type: f.type, channel: f.channel, length: f.payload.length, size: r.size }, {
        type: v.type,
        channel: v.channel,
        length: v.length,
        size: bytes.length,
      });
      assert.deepEqual(decodePayload(v, f), v.fields);
      if (!v.fields!.malformed) assert.deepEqual(encodeFrame(v.type!, v.channel!, encodePayload(v, v.fields!)), bytes);
      // A stream cut anywhere yields the same frame once, and nothing before its last byte.
      const reader = new FrameReader(limitFor(v));
      const step = bytes.length > 4096 ? 65536 : 1;
      const got: Frame[] = [];
      for (let at = 0; at < bytes.length; at += step) {
        const frames = reader.push(bytes.subarray(at, at + step));
        if (at + step < bytes.length) assert.deepEqual(frames, []);
        got.push(...frames);
      }
      assert.equal(got.length, 1);
      assert.ok(got[0]!.payload.equals(f.payload));
    });
  }

  it('frames back to back come out in order, with a partial one kept for later', () => {
    const all = file.vectors.filter((v) => v.result === 'frame' && !v.fill).map((v) => withFill(v.hex));
    const stream = Buffer.concat(all);
    const reader = new FrameReader(GUEST_MAX_PAYLOAD);
    const got = [...reader.push(stream.subarray(0, 100)), ...reader.push(stream.subarray(100))];
    assert.deepEqual(
      got.map((f) => encodeFrame(f.type, f.channel, f.payload).toString('hex')),
      all.map((b) => b.toString('hex')),
    );
  });

  it('docs/guest-agent.md lists every frame type of each direction', async () => {
    const doc = await readFile(PROTOCOL_DOC, 'utf8');
    const section = (title: string) => doc.slice(doc.indexOf(`### ${title}`), doc.indexOf('\n#', doc.indexOf(`### ${title}`) + 4));
    const rows = (text: string) => [...text.matchAll(/^\| `(.)` \| (\w+) \|/gm)].map((m) => [m[2], m[1]]);
    assert.deepEqual(rows(section('Host to guest')), Object.entries(ToGuest));
    assert.deepEqual(rows(section('Guest to host')), Object.entries(ToHost));
  });

  it('the hello names the protocol version', () => {
    assert.deepEqual(parseHello('mags-guest 1'), { program: 'mags-guest', version: PROTOCOL_VERSION });
    assert.equal(parseHello('mags-guest'), null);
  });
});

describe('guest protocol: golden frames, guest side (native/frame.c)', { timeout: 120_000 }, () => {
  it('frames-test accepts every vector', async () => {
    await execFileP('sh', [join(NATIVE_DIR, 'build.sh'), '--test']);
    const { stdout } = await execFileP(join(NATIVE_DIR, 'build', 'frames-test'), [FRAMES_JSON]);
    assert.equal(stdout.trim(), `${file.vectors.length} vectors, 0 failures`);
  });

  it('frames-test fails on a vector that does not match the code', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mags-frames-'));
    try {
      const bad = structuredClone(file);
      const exit = bad.vectors.find((v) => v.name === 'exit: signal')!;
      exit.fields = { kind: 1, value: 15 };
      await writeFile(join(dir, 'frames.json'), JSON.stringify(bad));
      const err = (await execFileP(join(NATIVE_DIR, 'build', 'frames-test'), [join(dir, 'frames.json')]).catch((e: unknown) => e)) as {
        code?: number;
        stderr?: string;
      };
      assert.equal(err.code, 1);
      assert.match(err.stderr ?? '', /FAIL exit: signal/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** The host end fed the golden bytes by a stand-in for the guest (the real one cannot misbehave). */
function hostEnd() {
  const guest = new Duplex({ read() {}, write: (_chunk, _enc, cb) => cb() });
  const conn = new GuestConnection(guest);
  const closed = new Promise<Error>((ok) => conn.onClose(ok));
  const vector = (name: string) => withFill(file.vectors.find((v) => v.name === name)!.hex);
  return { conn, closed, send: (b: Buffer) => guest.push(b), vector };
}

describe('guest protocol: the host end enforces it', () => {
  it('ignores a frame type it does not know', async () => {
    const h = hostEnd();
    h.send(h.vector('unknown type (ignored by the host)'));
    h.send(h.vector('hello'));
    assert.equal(await h.conn.hello, 'mags-guest 1');
    assert.equal(h.conn.closed, false);
    h.conn.close();
  });

  it('stops a guest that speaks another protocol version', async () => {
    const h = hostEnd();
    h.send(encodeFrame('H', 0, Buffer.from('mags-guest 2')));
    await assert.rejects(h.conn.hello, /speaks "mags-guest 2", not protocol version 1/);
    assert.equal(h.conn.closed, true);
  });

  it('stops a guest that announces a frame over the host limit', async () => {
    const h = hostEnd();
    h.send(h.vector('hello'));
    await h.conn.hello;
    h.send(h.vector('oversize: one byte over the host limit'));
    assert.match((await h.closed).message, /sent a 1048577-byte frame; the sandbox was stopped/);
  });

  it('stops a guest that sends an exit frame cut short, ending its processes', async () => {
    const h = hostEnd();
    h.send(h.vector('hello'));
    await h.conn.hello;
    const proc = h.conn.spawn({ argv: ['/bin/true'] }, () => undefined);
    assert.equal(proc.channel, 1);
    h.send(encodeFrame('X', 1, Buffer.from([0, 0, 0])));
    assert.match((await h.closed).message, /sent a 3-byte exit frame/);
    assert.deepEqual(await proc.exited, { code: null, signal: null });
  });
});

/** Starts `mags-guest host` (the guest agent serving fd 3) and connects the host end to it. */
async function startGuest() {
  const child = spawn(await buildGuestAgent(), ['host'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const sock = child.stdio[3] as Socket;
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  return { child, sock, conn: new GuestConnection(sock), exited, stderr: () => stderr };
}

describe('guest protocol: the real guest agent against the host end', { timeout: 60_000 }, () => {
  it('says hello with the protocol version and runs a process', async () => {
    const g = await startGuest();
    try {
      assert.equal(await g.conn.hello, `mags-guest ${PROTOCOL_VERSION}`);
      let out = '';
      const proc = g.conn.spawn({ argv: ['/bin/sh', '-c', 'echo "$X"; exit 3'], env: { X: 'hi' }, cwd: '/' }, (_s, d) => (out += d));
      assert.deepEqual(await proc.exited, { code: 3, signal: null });
      assert.equal(out, 'hi\n');
    } finally {
      g.conn.close();
      g.child.kill('SIGKILL');
      await g.exited;
    }
  });

  it('stdin larger than one frame arrives whole and in order', async () => {
    const g = await startGuest();
    try {
      await g.conn.hello;
      const input = Buffer.alloc(3 * HOST_MAX_PAYLOAD + 123);
      for (let i = 0; i < input.length; i++) input[i] = (i * 7) & 0xff;
      const out: Buffer[] = [];
      const proc = g.conn.spawn({ argv: ['/usr/bin/cksum'], stdin: true, cwd: '/' }, (_s, d) => out.push(d));
      proc.write(input);
      proc.closeStdin();
      assert.deepEqual(await proc.exited, { code: 0, signal: null });
      const direct = await new Promise<string>((ok, fail) => {
        const c = execFile('/usr/bin/cksum', (err, stdout) => (err ? fail(err) : ok(stdout)));
        c.stdin!.end(input);
      });
      assert.equal(Buffer.concat(out).toString(), direct);
    } finally {
      g.conn.close();
      g.child.kill('SIGKILL');
      await g.exited;
    }
  });

  it('a paused consumer stops the writer at the output window; resumed, every byte arrives', async () => {
    const g = await startGuest();
    try {
      await g.conn.hello;
      const total = 20 * 1024 * 1024;
      let got = 0;
      let zeros = true;
      const proc = g.conn.spawn({ argv: ['/usr/bin/head', '-c', String(total), '/dev/zero'], cwd: '/' }, (_s, d) => {
        got += d.length;
        if (zeros && d.some((b) => b !== 0)) zeros = false;
      });
      proc.pause!();
      let exited = false;
      void proc.exited.then(() => (exited = true));
      await sleep(300);
      const first = got;
      await sleep(300);
      assert.equal(got, first, 'no output arrives while paused');
      assert.ok(first <= OUTPUT_WINDOW, `${first} bytes arrived while paused (window ${OUTPUT_WINDOW})`);
      assert.equal(exited, false, 'the writer is blocked, not finished');
      proc.resume!();
      assert.deepEqual(await proc.exited, { code: 0, signal: null });
      assert.equal(got, total);
      assert.ok(zeros);
    } finally {
      g.conn.close();
      g.child.kill('SIGKILL');
      await g.exited;
    }
  });

  it('output left by a process that exited while paused waits for the resume, past the drain limit', async () => {
    const g = await startGuest();
    try {
      await g.conn.hello;
      // More than the window, less than the window plus a pipe: head exits with the rest in the pipe.
      const total = OUTPUT_WINDOW + 16 * 1024;
      let got = 0;
      const proc = g.conn.spawn({ argv: ['/usr/bin/head', '-c', String(total), '/dev/zero'], cwd: '/' }, (_s, d) => (got += d.length));
      proc.pause!();
      let exited = false;
      void proc.exited.then(() => (exited = true));
      await sleep(5600);
      assert.equal(exited, false);
      assert.ok(got <= OUTPUT_WINDOW);
      proc.resume!();
      assert.deepEqual(await proc.exited, { code: 0, signal: null });
      assert.equal(got, total);
    } finally {
      g.conn.close();
      g.child.kill('SIGKILL');
      await g.exited;
    }
  });

  it('the guest drops a host that announces a frame over its limit', async () => {
    const g = await startGuest();
    try {
      await g.conn.hello;
      const closed = new Promise<Error>((ok) => g.conn.onClose(ok));
      const header = Buffer.alloc(9);
      header[0] = 'I'.charCodeAt(0);
      header.writeUInt32BE(1, 1);
      header.writeUInt32BE(GUEST_MAX_PAYLOAD + 1, 5);
      g.sock.write(header);
      assert.equal(await g.exited, 0);
      assert.match((await closed).message, /connection closed/);
      assert.match(g.stderr(), /mags-guest: frame too large/);
    } finally {
      g.child.kill('SIGKILL');
    }
  });
});
