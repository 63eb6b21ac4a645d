/**
 * The host end of the files serve process (files/fs-serve.ts) against a scripted process: answers
 * matched by id in any order, failures mapped to FsError kinds, a malformed or unknown answer ends
 * the process and fails what was pending, read-only requests are sent again once after a kill, and
 * a process that exits before answering anything turns the sandbox to one-shot operations.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FsServe } from '../src/files/fs-serve.js';
import { FsError } from '../src/files/types.js';
import type { OutputStream, ProcessExit, Sandbox, SandboxProcess, SpawnRequest } from '../src/runtime/driver.js';

interface FakeProc {
  argv: string[];
  frames: Array<{ id: number; op: string; args: string[] }>;
  kills: number[];
  kill(sig: number): void;
  out(data: Buffer): void;
  exit(e: ProcessExit): void;
}

function fakeSandbox(): { sandbox: Sandbox; procs: FakeProc[] } {
  const procs: FakeProc[] = [];
  const sandbox = {
    id: 'sb-fake',
    spawn(req: SpawnRequest, onData: (s: OutputStream, d: Buffer) => void): SandboxProcess {
      let exitNow!: (e: ProcessExit) => void;
      const exited = new Promise<ProcessExit>((ok) => (exitNow = ok));
      let inbuf = Buffer.alloc(0);
      const p: FakeProc = {
        argv: req.argv,
        frames: [],
        kills: [],
        kill(sig) {
          p.kills.push(sig);
          exitNow({ code: null, signal: sig });
        },
        out: (d) => onData('stdout', d),
        exit: (e) => exitNow(e),
      };
      procs.push(p);
      return {
        exited,
        write(data) {
          inbuf = Buffer.concat([inbuf, Buffer.from(data)]);
          while (inbuf.length >= 9 && inbuf.length >= 9 + inbuf.readUInt32BE(5)) {
            const len = inbuf.readUInt32BE(5);
            const args = inbuf.subarray(9, 9 + len).toString('utf8').split('\0');
            args.pop();
            p.frames.push({ id: inbuf.readUInt32BE(0), op: String.fromCharCode(inbuf[4]!), args });
            inbuf = inbuf.subarray(9 + len);
          }
          return true;
        },
        writable: () => Promise.resolve(),
        closeStdin() {},
        resize() {},
        kill: (sig) => p.kill(sig),
      };
    },
  } as unknown as Sandbox;
  return { sandbox, procs };
}

function answer(id: number, status: number, payload: string | Buffer): Buffer {
  const body = Buffer.from(payload);
  const head = Buffer.alloc(9);
  head.writeUInt32BE(id, 0);
  head[4] = status;
  head.writeUInt32BE(body.length, 5);
  return Buffer.concat([head, body]);
}

const tick = () => new Promise((r) => setImmediate(r));

describe('FsServe (host end of mags-guest fs serve)', () => {
  it('starts one process, matches answers by id in any order, split across chunks', async () => {
    const { sandbox, procs } = fakeSandbox();
    const s = new FsServe(sandbox);
    const a = s.request('stat', ['/root/a']);
    const b = s.request('read', ['/root/b', '0', '-1', '262144']);
    await tick();
    assert.equal(procs.length, 1);
    assert.deepEqual(procs[0]!.argv, ['/run/mags/agent', 'fs', 'serve']);
    assert.deepEqual(procs[0]!.frames.map((f) => [f.op, f.args[0]]), [['s', '/root/a'], ['r', '/root/b']]);
    const both = Buffer.concat([answer(procs[0]!.frames[1]!.id, 2, ''), answer(procs[0]!.frames[0]!.id, 0, 'entry\n')]);
    procs[0]!.out(both.subarray(0, 5));
    procs[0]!.out(both.subarray(5, 12));
    procs[0]!.out(both.subarray(12));
    assert.deepEqual(await b, { oneShot: true });
    const got = await a;
    assert.equal(got.oneShot, false);
    assert.equal(!got.oneShot && got.payload.toString(), 'entry\n');
  });

  it('maps failures to FsError kinds; an unknown code is EIO', async () => {
    const { sandbox, procs } = fakeSandbox();
    const s = new FsServe(sandbox);
    const a = s.request('mkdir', ['/x', '0', '-1']);
    const b = s.request('rm', ['/y', '0']);
    await tick();
    procs[0]!.out(Buffer.concat([answer(procs[0]!.frames[0]!.id, 1, 'EEXIST cannot create directory /x: File exists'), answer(procs[0]!.frames[1]!.id, 1, 'BOGUS what')]));
    await assert.rejects(a, (e: unknown) => e instanceof FsError && e.kind === 'EEXIST');
    await assert.rejects(b, (e: unknown) => e instanceof FsError && e.kind === 'EIO');
  });

  it('ends the process on an answer for no request, fails a move, resends reads and writes once', async () => {
    const { sandbox, procs } = fakeSandbox();
    const s = new FsServe(sandbox);
    const m = s.request('mv', ['/root/a', '/root/b', '0']);
    const w = s.request('write', ['/root/w', '-1', '1', '2'], Buffer.from('hi'));
    const r = s.request('read', ['/root/r', '0', '-1', '262144']);
    await tick();
    procs[0]!.out(answer(999, 0, 'forged'));
    await assert.rejects(m, (e: unknown) => e instanceof FsError && e.kind === 'EIO' && /ended/.test(e.message));
    assert.deepEqual(procs[0]!.kills, [9]);
    await tick();
    // The write and the read went to a new process, the write with its body.
    assert.equal(procs.length, 2);
    assert.deepEqual(procs[1]!.frames.map((f) => [f.op, f.args[0]]), [['w', '/root/w'], ['r', '/root/r']]);
    procs[1]!.out(Buffer.concat([answer(procs[1]!.frames[1]!.id, 0, 'ok'), answer(procs[1]!.frames[0]!.id, 0, 'written')]));
    assert.equal(((await r) as { payload: Buffer }).payload.toString(), 'ok');
    assert.equal(((await w) as { payload: Buffer }).payload.toString(), 'written');
    // An oversized answer header is refused without waiting for its bytes.
    const r2 = s.request('stat', ['/a']);
    await tick();
    const big = Buffer.alloc(9);
    big.writeUInt32BE(procs[1]!.frames[2]!.id, 0);
    big.writeUInt32BE(64 * 1024 * 1024, 5);
    procs[1]!.out(big);
    await tick();
    assert.deepEqual(procs[1]!.kills, [9]);
    // Resent once to a third process, which is killed too: then it fails.
    await tick();
    procs[2]!.kill(15);
    await assert.rejects(r2, (e: unknown) => e instanceof FsError && e.kind === 'EIO');
  });

  it('fails pending requests without a retry when the sandbox went away', async () => {
    const { sandbox, procs } = fakeSandbox();
    const s = new FsServe(sandbox);
    const r = s.request('list', ['/root', '1', '1048576']);
    await tick();
    procs[0]!.exit({ code: null, signal: null });
    await assert.rejects(r, (e: unknown) => e instanceof FsError && e.kind === 'EIO' && /sandbox went away/.test(e.message));
    assert.equal(procs.length, 1);
  });

  it('turns to one-shot operations when the process exits before any answer (no fs serve there)', async () => {
    const { sandbox, procs } = fakeSandbox();
    const s = new FsServe(sandbox);
    const r = s.request('stat', ['/root']);
    await tick();
    procs[0]!.exit({ code: 2, signal: null });
    assert.deepEqual(await r, { oneShot: true });
    assert.deepEqual(await s.request('stat', ['/root']), { oneShot: true });
    assert.equal(procs.length, 1);
  });
});
