/**
 * The files API on a persistent job in a real sandbox (crun, the real guest agent, the real
 * lifecycle manager): byte-exact round trips (0 B, 1 B, 100 MiB, streamed), Range reads,
 * list/mkdir/move/remove, watch, hostile paths resolving inside the sandbox, disk full, other users.
 */
import assert from 'node:assert/strict';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { silentLogger } from '../src/logger.js';
import type { Sandbox, SandboxPool } from '../src/runtime/driver.js';
import { createPool } from '../src/scheduler/pool.js';
import { containerTestDriver, type ContainerTestDriver } from './helpers/container-runtime.js';
import { createHarness, type Harness } from './helpers/harness.js';

const MiB = 1024 * 1024;
const execFileP = promisify(execFile);

/** `n` pseudo-random bytes as a stream of 1 MiB chunks (AES-CTR of zeros), never whole in memory. */
async function* pseudoRandom(n: number, seed: Buffer): AsyncGenerator<Buffer> {
  const c = createCipheriv('aes-128-ctr', seed, Buffer.alloc(16));
  const zeros = Buffer.alloc(MiB);
  for (let left = n; left > 0; left -= MiB) yield c.update(left >= MiB ? zeros : zeros.subarray(0, left));
}

async function hashOf(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  const h = createHash('sha256');
  for await (const c of chunks) h.update(c);
  return h.digest('hex');
}

describe('files API on a real sandbox', { timeout: 300_000 }, () => {
  let rt: ContainerTestDriver;
  let sandbox: Sandbox;
  let pool: SandboxPool;
  let h: Harness;
  let base: string;
  let token: string;
  let other: string;
  let job: string;
  let ephemeral: string;

  const url = (path: string, op = '') => `${base}/api/v1/mags-jobs/${job}/files${op}?path=${encodeURIComponent(path)}`;
  const auth = (t = token) => ({ authorization: `Bearer ${t}` });
  const curl = async (args: string[]) => (await execFileP('curl', ['-sS', '--fail-with-body', '-H', `authorization: Bearer ${token}`, ...args], { maxBuffer: 1024 * 1024 })).stdout;
  const sh = async (script: string) => {
    let out = '';
    const r = await sandbox.exec({ script }, (l) => (out += `${l.text}\n`));
    assert.equal(r.exitCode, 0, `${script}: ${out}`);
    return out;
  };

  before(async () => {
    rt = await containerTestDriver({ network: false });
    await rt.driver.init();
    pool = createPool(rt.driver, { minSize: 0, maxSize: 4, defaultLimits: { vcpus: 1, memoryMb: 512, diskGb: 1, pids: 256 }, log: silentLogger() });
    h = await createHarness({ sandboxPool: pool, filesMaxBytes: 200 * MiB });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    token = await h.makeUser('alice');
    other = await h.makeUser('bob');
    const submit = async (body: object) => {
      const res = await fetch(`${base}/api/v1/mags-jobs`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify({ script: 'true', type: 'inline', ...body }) });
      return ((await res.json()) as { request_id: string }).request_id;
    };
    job = await submit({ name: 'files-job', persistent: true, disk_gb: 1 });
    ephemeral = await submit({ name: 'plain-job' });
    await h.waitDone(token, ephemeral, 60_000);
    // The persistent job keeps its sandbox (status running) after its script.
    for (let i = 0; ; i++) {
      const status = (await (await fetch(`${base}/api/v1/mags-jobs/${job}/status`, { headers: auth() })).json()) as { status: string; vm_id?: string };
      const found = rt.driver.list().find((s) => s.id === status.vm_id);
      if (status.status === 'running' && found) {
        sandbox = found;
        break;
      }
      assert.ok(i < 600, `the persistent job did not come up: ${JSON.stringify(status)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    try {
      await h?.close();
      await pool?.stop();
    } finally {
      await rt?.close();
    }
  });

  it('round-trips 0 B, 1 B and random binary files byte for byte', async () => {
    for (const size of [0, 1, 65_537, 3 * MiB + 5]) {
      const data = randomBytes(size);
      const put = await fetch(url(`/root/rt/${size}.bin`), { method: 'PUT', headers: auth(), body: data });
      assert.equal(put.status, 200, await put.clone().text());
      const entry = (await put.json()) as { size: number; type: string; path: string };
      assert.deepEqual([entry.size, entry.type, entry.path], [size, 'file', `/root/rt/${size}.bin`]);
      const get = await fetch(url(`rt/${size}.bin`), { headers: auth() });
      assert.equal(get.status, 200);
      assert.equal(get.headers.get('content-type'), 'application/octet-stream');
      assert.ok(Buffer.from(await get.arrayBuffer()).equals(data), `${size} bytes differ`);
    }
    // What the sandbox itself sees is the same bytes.
    assert.equal((await sh('sha256sum /root/rt/65537.bin')).split(' ')[0], createHash('sha256').update(await (await fetch(url('/root/rt/65537.bin'), { headers: auth() })).arrayBuffer().then(Buffer.from)).digest('hex'));
  });

  it('streams a 100 MiB file both ways without holding it in memory', async (t) => {
    const size = 100 * MiB;
    const dir = await mkdtemp(join(tmpdir(), 'mags-files-'));
    try {
      const src = join(dir, 'src.bin');
      await pipeline(Readable.from(pseudoRandom(size, randomBytes(16))), createWriteStream(src));
      const want = await hashOf(createReadStream(src));
      // Live buffer memory of the server (curl is the client, out of process), sampled after a full
      // GC so garbage awaiting collection does not count: a server holding the file shows ~100 MiB.
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      gc();
      const before = process.memoryUsage().arrayBuffers;
      let peak = before;
      let samples = 0;
      const sampler = setInterval(() => {
        gc();
        samples++;
        peak = Math.max(peak, process.memoryUsage().arrayBuffers);
      }, 250);
      try {
        const put = await curl(['-T', src, '-H', 'content-type: application/octet-stream', url('/root/big.bin')]);
        assert.equal((JSON.parse(put) as { size: number }).size, size, put);
        await curl(['-o', join(dir, 'back.bin'), url('/root/big.bin')]);
      } finally {
        clearInterval(sampler);
      }
      assert.equal(await hashOf(createReadStream(join(dir, 'back.bin'))), want);
      assert.equal((await sh('sha256sum /root/big.bin')).split(' ')[0], want);
      const grew = (peak - before) / MiB;
      t.diagnostic(`live buffer memory grew by ${grew.toFixed(1)} MiB while moving 100 MiB each way (${(before / MiB).toFixed(1)} -> peak ${(peak / MiB).toFixed(1)} MiB, ${samples} samples)`);
      // A server that buffered the file would grow by 100 MiB or more; in-flight windows are a few MiB.
      assert.ok(samples >= 4, 'the transfer was sampled');
      assert.ok(grew < 40, `live buffers grew by ${grew.toFixed(0)} MiB while moving 100 MiB each way`);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await sh('rm -f /root/big.bin');
    }
  });

  it('a cut-off upload leaves the old file and no temporary file', async () => {
    await fetch(url('/root/cut.txt'), { method: 'PUT', headers: auth(), body: 'before' });
    await new Promise<void>((resolve) => {
      const req = httpRequest(url('/root/cut.txt'), { method: 'PUT', headers: { ...auth(), 'content-length': String(10 * MiB) } });
      req.on('error', () => resolve());
      req.write(randomBytes(MiB), () => setTimeout(() => {
        req.destroy();
        resolve();
      }, 300));
    });
    for (let i = 0; i < 50 && (await sh('ls -a /root')).includes('.mags-'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal((await sh('ls -a /root')).includes('.mags-'), false, 'no temporary file left');
    assert.equal(await (await fetch(url('/root/cut.txt'), { headers: auth() })).text(), 'before');
    await sh('rm /root/cut.txt');
  });

  it('answers Range reads with 206 and Content-Range; past the end is 416', async () => {
    const data = randomBytes(1000);
    await fetch(url('/root/range.bin'), { method: 'PUT', headers: auth(), body: data });
    const cases: Array<[string, number, number, string]> = [
      ['bytes=10-19', 10, 20, 'bytes 10-19/1000'],
      ['bytes=990-', 990, 1000, 'bytes 990-999/1000'],
      ['bytes=-5', 995, 1000, 'bytes 995-999/1000'],
      ['bytes=900-5000', 900, 1000, 'bytes 900-999/1000'],
    ];
    for (const [range, from, to, cr] of cases) {
      const res = await fetch(url('/root/range.bin'), { headers: { ...auth(), range } });
      assert.equal(res.status, 206, range);
      assert.equal(res.headers.get('content-range'), cr);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data.subarray(from, to)), range);
    }
    const past = await fetch(url('/root/range.bin'), { headers: { ...auth(), range: 'bytes=1000-' } });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), 'bytes */1000');
    assert.equal(((await past.json()) as { code: string }).code, 'RANGE_NOT_SATISFIABLE');
    const bad = await fetch(url('/root/range.bin'), { headers: { ...auth(), range: 'bytes=1-2,5-6' } });
    assert.equal(bad.status, 400);
  });

  it('lists, makes directories, moves and removes, with registry codes for failures', async () => {
    const json = async (res: Response) => ({ status: res.status, body: (await res.json()) as Record<string, unknown> });
    const post = (op: string, body: object) => fetch(`${base}/api/v2/mags-jobs/${job}/files/${op}`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal((await post('mkdir', { path: '/root/tree/a/b', parents: true })).status, 200);
    assert.equal((await json(await post('mkdir', { path: '/root/tree/a' }))).body.code, 'PATH_EXISTS');
    await fetch(url('/root/tree/a/b/f.txt'), { method: 'PUT', headers: auth(), body: 'hello' });
    await sh('ln -s /etc/hostname /root/tree/link && chmod 600 /root/tree/a/b/f.txt');
    const listed = await json(await fetch(`${url('/root/tree', '/list')}&depth=3`, { headers: auth() }));
    assert.equal(listed.status, 200);
    const entries = listed.body.entries as Array<{ path: string; type: string; size: number; mode: number; target?: string }>;
    assert.deepEqual(entries.map((e) => [e.path, e.type]), [['/root/tree/a', 'dir'], ['/root/tree/a/b', 'dir'], ['/root/tree/a/b/f.txt', 'file'], ['/root/tree/link', 'symlink']]);
    assert.equal(entries[2]!.mode, 0o600);
    assert.equal(entries[3]!.target, '/etc/hostname');
    const moved = await json(await post('move', { from: '/root/tree/a/b/f.txt', to: '/root/tree/g.txt' }));
    assert.equal(moved.status, 200);
    await fetch(url('/root/tree/h.txt'), { method: 'PUT', headers: auth(), body: 'x' });
    assert.equal((await json(await post('move', { from: '/root/tree/g.txt', to: '/root/tree/h.txt' }))).body.code, 'PATH_EXISTS');
    assert.equal((await post('move', { from: '/root/tree/g.txt', to: '/root/tree/h.txt', overwrite: true })).status, 200);
    assert.equal(await (await fetch(url('/root/tree/h.txt'), { headers: auth() })).text(), 'hello');
    const codes = async (res: Promise<Response>) => ((await (await res).json()) as { code: string }).code;
    assert.equal(await codes(fetch(url('/root/nope'), { headers: auth() })), 'PATH_NOT_FOUND');
    assert.equal(await codes(fetch(url('/root/tree'), { headers: auth() })), 'IS_A_DIRECTORY');
    assert.equal(await codes(fetch(url('/root/tree'), { method: 'PUT', headers: auth(), body: 'x' })), 'IS_A_DIRECTORY');
    assert.equal(await codes(fetch(url('/root/tree'), { method: 'DELETE', headers: auth() })), 'DIRECTORY_NOT_EMPTY');
    assert.equal(await codes(fetch(`${url('/root/tree/h.txt/x', '/list')}`, { headers: auth() })), 'NOT_A_DIRECTORY');
    assert.equal(await codes(fetch(url('/root/a\u0000b'), { headers: auth() })), 'VALIDATION_ERROR');
    assert.equal(await codes(fetch(url(`/root/${'n'.repeat(256)}`), { headers: auth() })), 'VALIDATION_ERROR');
    assert.equal(await codes(fetch(url(`/root/${'d/'.repeat(2100)}`), { headers: auth() })), 'VALIDATION_ERROR');
    const rmTree = await fetch(`${url('/root/tree')}&recursive=1`, { method: 'DELETE', headers: auth() });
    assert.equal(rmTree.status, 200, await rmTree.text());
    await sh('test ! -e /root/tree && test -e /etc/hostname');
  });

  it('resolves hostile paths inside the sandbox, never on the host', async () => {
    const marker = `sandbox-${randomBytes(4).toString('hex')}`;
    await sh(`echo ${marker} > /etc/files-test-marker`);
    // `..` past the root stays at the sandbox's root.
    const up = await fetch(url('../../../../etc/files-test-marker'), { headers: auth() });
    assert.equal(await up.text(), `${marker}\n`);
    const shadow = await fetch(url('../../etc/shadow'), { headers: auth() });
    if (shadow.status === 200) assert.notEqual(await shadow.text(), await readFile('/etc/shadow', 'utf8'));
    // /proc/1/root is the sandbox's PID 1 (the guest agent, not dumpable): refused, never the host.
    await sh('ln -sfn /proc/1/root/etc /root/escape');
    const viaPid1 = await fetch(url('/root/escape/files-test-marker'), { headers: auth() });
    assert.equal(viaPid1.status, 403);
    const hostName = `files-escape-${randomBytes(4).toString('hex')}`;
    assert.equal((await fetch(url(`/proc/1/root/tmp/${hostName}`), { method: 'PUT', headers: auth(), body: 'x' })).status, 403);
    // /proc/self/root is the sandbox's root: the sandbox again.
    await sh('ln -sfn /proc/self/root/etc /root/escape');
    assert.equal(await (await fetch(url('/root/escape/files-test-marker'), { headers: auth() })).text(), `${marker}\n`);
    const put = await fetch(url(`/proc/self/root/tmp/${hostName}`), { method: 'PUT', headers: auth(), body: 'inside' });
    assert.equal(put.status, 200, await put.clone().text());
    await sh(`test "$(cat /tmp/${hostName})" = inside`);
    await assert.rejects(readFile(`/tmp/${hostName}`), { code: 'ENOENT' });
    // A FIFO is refused at once (no writer needed), a device too.
    await sh('mkfifo /root/fifo');
    const t0 = Date.now();
    const fifo = await fetch(url('/root/fifo'), { headers: auth() });
    assert.equal(fifo.status, 409);
    assert.equal(((await fifo.json()) as { code: string }).code, 'NOT_A_REGULAR_FILE');
    assert.ok(Date.now() - t0 < 5000);
    assert.equal((await fetch(url('/dev/zero'), { headers: auth() })).status, 409);
    // A 10 GB sparse file: refused whole, served by Range.
    await sh('truncate -s 10G /root/sparse && printf XYZ | dd of=/root/sparse bs=1 seek=5000000000 conv=notrunc 2>/dev/null');
    const whole = await fetch(url('/root/sparse'), { headers: auth() });
    assert.equal(whole.status, 413);
    assert.equal(((await whole.json()) as { code: string }).code, 'PAYLOAD_TOO_LARGE');
    const part = await fetch(url('/root/sparse'), { headers: { ...auth(), range: 'bytes=4999999999-5000000003' } });
    assert.equal(part.status, 206);
    assert.deepEqual([...Buffer.from(await part.arrayBuffer())], [0, 0x58, 0x59, 0x5a, 0]);
    assert.equal((await fetch(url('/root/sparse'), { headers: { ...auth(), range: 'bytes=0-999999999' } })).status, 413);
    await sh('rm -f /root/sparse /root/fifo /root/escape /etc/files-test-marker');
  });

  it('watch streams create, modify and delete in order', async () => {
    await sh('mkdir -p /root/watched');
    const ac = new AbortController();
    const res = await fetch(`${url('/root/watched', '/watch')}&recursive=1`, { headers: auth(), signal: ac.signal });
    assert.equal(res.status, 200);
    const events: Array<{ type: string; path?: string }> = [];
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let buf = '';
    const next = async () => {
      for (;;) {
        const m = /data: (.*)\n\n/.exec(buf);
        if (m) {
          buf = buf.slice(m.index + m[0].length);
          return JSON.parse(m[1]!) as { type: string; path?: string };
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('watch ended');
        buf += Buffer.from(value).toString('utf8');
      }
    };
    try {
      assert.equal((await next()).type, 'ready');
      await sh('echo one > /root/watched/f && sleep 0.2 && echo two >> /root/watched/f && sleep 0.2 && rm /root/watched/f');
      while (events.length < 4) events.push(await next());
      assert.deepEqual(events.map((e) => [e.type, e.path]), [
        ['create', '/root/watched/f'],
        ['modify', '/root/watched/f'],
        ['modify', '/root/watched/f'],
        ['delete', '/root/watched/f'],
      ]);
    } finally {
      ac.abort();
      await reader.cancel().catch(() => undefined);
    }
    // The watcher process inside the sandbox is gone once the client left.
    for (let i = 0; i < 50 && (await sh('ps -eo args')).includes('fs watch'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(!(await sh('ps -eo args')).includes('fs watch'), 'the watcher process ended');
  });

  it('answers 404 for another user, 422 for a job that is not persistent', async () => {
    const res = await fetch(url('/root'), { headers: auth(other) });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { code: string }).code, 'JOB_NOT_FOUND');
    const put = await fetch(url('/root/x'), { method: 'PUT', headers: auth(other), body: 'x' });
    assert.equal(put.status, 404);
    const plain = await fetch(`${base}/api/v1/mags-jobs/${ephemeral}/files/list?path=/root`, { headers: auth() });
    assert.equal(plain.status, 422);
  });

  it('reports a full disk as 507 DISK_FULL naming the limit, and keeps the old file', async () => {
    await fetch(url('/root/keep.txt'), { method: 'PUT', headers: auth(), body: 'old' });
    await sh('fallocate -l $(( $(df --output=avail -B1 /root | tail -1) - 65536 )) /root/fill || true');
    try {
      const res = await fetch(url('/root/keep.txt'), { method: 'PUT', headers: auth(), body: randomBytes(4 * MiB) });
      assert.equal(res.status, 507);
      const body = (await res.json()) as { code: string; error: string };
      assert.equal(body.code, 'DISK_FULL');
      assert.match(body.error, /disk_gb 1 GB/);
    } finally {
      await sh('rm -f /root/fill');
    }
    assert.equal(await (await fetch(url('/root/keep.txt'), { headers: auth() })).text(), 'old');
    assert.equal((await sh('ls -a /root')).includes('.mags-'), false, 'no temporary file left');
  });
});
