/**
 * The workspace tree is hostile input: symlink swaps during a sync (by hook and by a tight loop),
 * special files, setuid bits, hard links, huge trees, a 10 GiB sparse file, and manifests with
 * unsafe paths. Nothing outside the layer may be read into a workspace or written by a restore.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, readdir, readlink, rename, rm, stat, symlink, truncate, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { WorkspaceSyncError } from '../src/workspaces/sync/index.js';
import { syncFixture } from './helpers/workspace-fixture.js';
import { recordingLogger, treeHash } from './helpers/workspace-tree.js';

const GIB = 1024 * 1024 * 1024;

/** Every stored blob's bytes, concatenated per file, searched for `needle`. */
async function storeContains(blobRoot: string, needle: string): Promise<boolean> {
  async function walk(d: string): Promise<boolean> {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory() ? await walk(p) : (await readFile(p)).includes(needle)) return true;
    }
    return false;
  }
  return walk(blobRoot);
}

describe('workspace sync: hostile trees', () => {
  it('a file swapped for a symlink to a host file right before it is read stores the symlink, not the host bytes', async () => {
    const marker = `HOST-SECRET-${randomBytes(8).toString('hex')}`;
    const f = await syncFixture({
      beforeOpen: async (path) => {
        if (path.toString() !== 'root/data') return;
        await rm(join(f.layer('src'), 'root/data'));
        await symlink(join(f.dir, 'host/secret'), join(f.layer('src'), 'root/data'));
      },
    });
    try {
      await mkdir(join(f.dir, 'host'));
      await writeFile(join(f.dir, 'host/secret'), marker);
      await mkdir(join(f.layer('src'), 'root'), { recursive: true });
      await writeFile(join(f.layer('src'), 'root/data'), 'sandbox data');
      const r = await f.sync.sync('ws', f.layer('src'));
      assert.ok(r.version);
      assert.equal(await storeContains(join(f.dir, 'blobs'), marker), false);
      await f.sync.restore('ws', f.layer('dst'));
      assert.equal(await readlink(join(f.layer('dst'), 'root/data')), join(f.dir, 'host/secret'));
    } finally {
      await f.cleanup();
    }
  });

  it('a directory swapped for a symlink to a host directory mid-walk is not followed', async () => {
    const marker = `HOST-DIR-${randomBytes(8).toString('hex')}`;
    const f = await syncFixture({
      beforeOpen: async (path) => {
        if (path.toString() !== 'd/f') return;
        await rename(join(f.layer('src'), 'd'), join(f.layer('src'), 'd-moved'));
        await symlink(join(f.dir, 'host'), join(f.layer('src'), 'd'));
      },
    });
    try {
      await mkdir(join(f.dir, 'host'));
      await writeFile(join(f.dir, 'host/f'), marker);
      await writeFile(join(f.dir, 'host/g'), marker);
      await mkdir(join(f.layer('src'), 'd'), { recursive: true });
      await writeFile(join(f.layer('src'), 'd/f'), 'original f');
      await writeFile(join(f.layer('src'), 'd/g'), 'original g');
      await f.sync.sync('ws', f.layer('src'));
      assert.equal(await storeContains(join(f.dir, 'blobs'), marker), false);
      await f.sync.restore('ws', f.layer('dst'));
      assert.equal(await readFile(join(f.layer('dst'), 'd/f'), 'utf8'), 'original f');
      assert.equal(await readFile(join(f.layer('dst'), 'd/g'), 'utf8'), 'original g');
    } finally {
      await f.cleanup();
    }
  });

  it('a tight loop swapping a file and a symlink to a host file never leaks host bytes', async () => {
    const marker = `LOOP-SECRET-${randomBytes(8).toString('hex')}`;
    const f = await syncFixture();
    const src = f.layer('src');
    await mkdir(src);
    await mkdir(join(f.dir, 'host'));
    await writeFile(join(f.dir, 'host/secret'), marker);
    const loop = spawn('sh', ['-c', `cd ${src} && while :; do ln -s ${f.dir}/host/secret t1; mv -T t1 f; echo sandbox-data > t2; mv -T t2 f; done`], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 30; i++) await f.sync.sync('ws', src);
      assert.equal(await storeContains(join(f.dir, 'blobs'), marker), false);
    } finally {
      loop.kill('SIGKILL');
      await new Promise((r) => (loop.exitCode !== null || loop.signalCode !== null ? r(null) : loop.once('exit', r)));
      await f.cleanup();
    }
  });

  it('skips FIFOs, sockets and device nodes with a log line, strips setuid/setgid, stores hard links as separate files', async () => {
    const { log, records } = recordingLogger();
    const f = await syncFixture({ log });
    try {
      const src = f.layer('src');
      await mkdir(src);
      assert.equal(spawnSync('mkfifo', [join(src, 'fifo')]).status, 0);
      assert.equal(spawnSync('mknod', [join(src, 'null'), 'c', '1', '3']).status, 0);
      assert.equal(spawnSync('mknod', [join(src, 'blockdev'), 'b', '7', '0']).status, 0);
      assert.equal(spawnSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(join(src, 'sock'))})`]).status, 0);
      await writeFile(join(src, 'suid'), '#!/bin/sh\n');
      await chmod(join(src, 'suid'), 0o6755);
      await mkdir(join(src, 'sgid-dir'));
      await chmod(join(src, 'sgid-dir'), 0o2775);
      await writeFile(join(src, 'a'), 'linked');
      spawnSync('ln', [join(src, 'a'), join(src, 'b')]);
      const r = await f.sync.sync('ws', src);
      assert.equal(r.skipped, 4);
      const skipped = records.filter((x) => x.msg === 'workspace sync: skipped a path').map((x) => `${x.path}: ${x.why}`).sort();
      assert.deepEqual(skipped, ['blockdev: a device node', 'fifo: a FIFO', 'null: a device node', 'sock: a socket']);
      const dst = f.layer('dst');
      await f.sync.restore('ws', dst);
      assert.deepEqual((await readdir(dst)).sort(), ['a', 'b', 'sgid-dir', 'suid']);
      assert.equal((await stat(join(dst, 'suid'))).mode & 0o7777, 0o755);
      assert.equal((await stat(join(dst, 'sgid-dir'))).mode & 0o7777, 0o775);
      const [sa, sb] = [await stat(join(dst, 'a')), await stat(join(dst, 'b'))];
      assert.equal(sa.nlink, 1);
      assert.notEqual(sa.ino, sb.ino);
      assert.equal(await readFile(join(dst, 'b'), 'utf8'), 'linked');
    } finally {
      await f.cleanup();
    }
  });

  it('100k tiny files: bounded memory, and the no-change resync reads nothing', async () => {
    const f = await syncFixture();
    try {
      const src = f.layer('src');
      for (let d = 0; d < 100; d++) {
        await mkdir(join(src, `d${d}`), { recursive: true });
        await Promise.all(Array.from({ length: 1000 }, (_, i) => writeFile(join(src, `d${d}`, `f${i}`), `tiny ${i % 50}`)));
      }
      global.gc?.();
      const heapBefore = process.memoryUsage().heapUsed;
      let peak = heapBefore;
      const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 20);
      let first, second;
      try {
        first = await f.sync.sync('ws', src);
        second = await f.sync.sync('ws', src);
      } finally {
        clearInterval(timer);
      }
      assert.equal(first.files, 100_000);
      assert.equal(first.uploadedBlobs, 50);
      assert.equal(second.version, undefined);
      assert.equal(second.readBytes, 0);
      const grew = (peak - heapBefore) / 1024 / 1024;
      assert.ok(grew < 300, `heap grew by ${grew.toFixed(0)} MiB`);
      console.log(`# 100k files: first sync ${first.ms.toFixed(0)} ms, no-change ${second.ms.toFixed(0)} ms, heap +${grew.toFixed(0)} MiB`);
    } finally {
      await f.cleanup();
    }
  });

  it('a 10 GiB sparse file is stored as holes plus its data chunks and restored sparse', async () => {
    const f = await syncFixture();
    try {
      const src = f.layer('src');
      await mkdir(src);
      const big = join(src, 'sparse.img');
      await writeFile(big, '');
      await truncate(big, 10 * GIB);
      const fh = await open(big, 'r+');
      try {
        await fh.write(Buffer.from('start'), 0, 5, 0);
        await fh.write(Buffer.from('middle'), 0, 6, 5 * GIB);
      } finally {
        await fh.close();
      }
      const rss = process.memoryUsage().rss;
      const r = await f.sync.sync('ws', src);
      assert.equal(r.bytes, 10 * GIB);
      assert.equal(r.uploadedBlobs, 2);
      assert.ok(process.memoryUsage().rss - rss < 200 * 1024 * 1024);
      const dst = f.layer('dst');
      await f.sync.restore('ws', dst);
      const st = await stat(join(dst, 'sparse.img'));
      assert.equal(st.size, 10 * GIB);
      assert.ok(st.blocks * 512 < 1024 * 1024, `restored file uses ${st.blocks * 512} bytes`);
      const back = await open(join(dst, 'sparse.img'), 'r');
      try {
        const buf = Buffer.alloc(6);
        await back.read(buf, 0, 6, 5 * GIB);
        assert.equal(buf.toString(), 'middle');
      } finally {
        await back.close();
      }
      console.log(`# 10 GiB sparse file: sync ${r.ms.toFixed(0)} ms`);
    } finally {
      await f.cleanup();
    }
  });

  it('restore rejects manifests with unsafe paths and writes nothing outside the layer', async () => {
    const f = await syncFixture();
    try {
      const host = join(f.dir, 'host');
      await mkdir(host);
      const hash = 'a'.repeat(64);
      const entry = (o: Record<string, unknown>) => JSON.stringify({ t: 'f', m: 0o644, u: 0, g: 0, s: 0, mt: 0, c: [], ...o });
      const dir = (p: string) => JSON.stringify({ p, t: 'd', m: 0o755, u: 0, g: 0, s: 0, mt: 0 });
      const cases: [string, string[]][] = [
        ['absolute path', [entry({ p: `${host}/evil` })]],
        ['dot-dot', [entry({ p: '../host/evil' })]],
        ['dot-dot inside', [dir('a'), entry({ p: 'a/../../evil' })]],
        ['empty segment', [dir('a'), entry({ p: 'a//evil' })]],
        ['dot segment', [dir('a'), entry({ p: 'a/./evil' })]],
        ['NUL', [entry({ p: 'evil\u0000x' })]],
        ['under a symlink', [JSON.stringify({ p: 'l', t: 'l', m: 0o777, u: 0, g: 0, s: 0, mt: 0, l: host }), entry({ p: 'l/evil' })]],
        ['under a file', [entry({ p: 'f' }), entry({ p: 'f/evil' })]],
        ['before its directory', [entry({ p: 'x/evil' })]],
        ['twice', [entry({ p: 'evil' }), entry({ p: 'evil' })]],
        ['sizes that do not add up', [entry({ p: 'evil', s: 10, c: [[hash, 5]] })]],
        ['bad hash', [entry({ p: 'evil', s: 1, c: [['../../etc', 1]] })]],
        ['empty path', [entry({ p: '' })]],
        ['symlink then file of the same name', [JSON.stringify({ p: 'evil', t: 'l', m: 0o777, u: 0, g: 0, s: 0, mt: 0, l: `${host}/evil` }), entry({ p: 'evil' })]],
      ];
      for (const [i, [name, lines]] of cases.entries()) {
        const ws = `bad${i}`;
        const header = JSON.stringify({ v: 1, ws, version: '000000000000001-aaaaaa', created_at: new Date().toISOString(), files: 1, bytes: 0, chunk_bytes: 4194304 });
        await f.store.put(`workspaces/${ws}/manifests/000000000000001-aaaaaa.jsonl.gz`, gzipSync(`${[header, ...lines].join('\n')}\n`));
        await assert.rejects(f.sync.restore(ws, f.layer(`dst${i}`)), (err: WorkspaceSyncError) => {
          assert.equal(err.code, 'UNSAFE_MANIFEST', `${name}: ${err.message}`);
          return true;
        }, name);
        assert.deepEqual(await readdir(host), [], `${name} wrote outside the layer`);
      }
      await lstat(join(f.layer('dst6'), 'l')); // the symlink itself was created, nothing through it
    } finally {
      await f.cleanup();
    }
  });

  it('refuses a layer directory that is a symlink', async () => {
    const f = await syncFixture();
    try {
      await mkdir(f.layer('real'));
      await symlink(f.layer('real'), f.layer('link'));
      await assert.rejects(f.sync.sync('ws', f.layer('link')), { code: 'INVALID_LAYER' });
      await assert.rejects(f.sync.restore('ws', f.layer('link')), { code: 'INVALID_LAYER' });
      assert.ok((await treeHash(f.layer('real'))).lines.length === 0);
    } finally {
      await f.cleanup();
    }
  });
});
