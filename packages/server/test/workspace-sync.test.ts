/**
 * Workspace sync engine on real file systems and real blob stores: round trips compared by tree
 * hash, the stat-only no-change path, chunk-level uploads, history, delete with shared blobs,
 * corruption, and crashes (abort, a throwing store, SIGKILL of a syncing child process).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, lstat, mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BlobStoreError, type BlobStore } from '../src/storage/blobs/index.js';
import { silentLogger } from '../src/logger.js';
import { WorkspaceSync, type WorkspaceSyncError } from '../src/workspaces/sync/index.js';
import { buildTree, syncFixture } from './helpers/workspace-fixture.js';
import { treeHash } from './helpers/workspace-tree.js';

const MIB = 1024 * 1024;

async function blobFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  }
  await walk(join(root, 'blobs', 'blobs'));
  return out;
}

describe('workspace sync (fs blob store)', () => {
  it('round-trips a tree with every file type (tree hash: content, mode, owner, link target, whiteout, opaque)', async () => {
    const f = await syncFixture({ idShift: 200_000 });
    try {
      const src = f.layer('src');
      await mkdir(src);
      await buildTree(src, 200_000);
      const r = await f.sync.sync('ws1', src, { imageVersion: 'img-1' });
      assert.ok(r.version);
      assert.equal(r.skipped, 0);
      const dst = f.layer('dst');
      const back = await f.sync.restore('ws1', dst);
      assert.equal(back.version, r.version);
      const a = await treeHash(src, { mtimes: true });
      const b = await treeHash(dst, { mtimes: true });
      assert.deepEqual(b.lines, a.lines);
      assert.equal(b.hash, a.hash);
      // Owners are stored in sandbox view: uid 1000 in the sandbox, not 201000.
      assert.equal((await lstat(join(dst, 'root/hello.txt'))).uid, 201_000);
      // The sparse file stays sparse (holes are not stored or written).
      const sp = await lstat(join(dst, 'root/sparse'));
      assert.equal(sp.size, 9 * MIB);
      assert.ok(sp.blocks * 512 < MIB, `sparse file uses ${sp.blocks * 512} bytes`);
      const latest = await f.sync.latest('ws1');
      assert.equal(latest?.version, r.version);
      assert.equal(latest?.image_version, 'img-1');
      // A restored layer syncs to no new version (times and modes came back exactly).
      const again = await f.sync.sync('ws1', dst);
      assert.equal(again.version, undefined, JSON.stringify(again.changes));
    } finally {
      await f.cleanup();
    }
  });

  it('an unchanged workspace makes no version and reads no file contents; one changed file uploads only its chunk', async () => {
    const f = await syncFixture();
    try {
      const src = f.layer('src');
      await mkdir(src);
      await buildTree(src);
      const first = await f.sync.sync('ws', src);
      assert.ok(first.version);
      assert.ok(first.readBytes > 0);
      const same = await f.sync.sync('ws', src);
      assert.equal(same.version, undefined);
      assert.equal(same.readBytes, 0);
      assert.equal(same.uploadedBytes, 0);
      assert.equal((await f.sync.history('ws')).length, 1);

      await appendFile(join(src, 'root/hello.txt'), 'more\n');
      const one = await f.sync.sync('ws', src);
      assert.ok(one.version);
      assert.equal(one.changedFiles, 1);
      assert.equal(one.uploadedBlobs, 1);
      assert.equal(one.readBytes, 'hello workspace\nmore\n'.length);
      assert.deepEqual(one.changes.modified.map((c) => c.path), ['root/hello.txt']);
      assert.deepEqual(one.changes.added, []);

      await rm(join(src, 'root/secret'));
      await writeFile(join(src, 'root/new'), 'new');
      const del = await f.sync.sync('ws', src);
      assert.deepEqual(del.changes.deleted.map((c) => c.path), ['root/secret']);
      assert.deepEqual(del.changes.added.map((c) => c.path), ['root/new']);
    } finally {
      await f.cleanup();
    }
  });

  it('a one-byte change in a large file uploads one 4 MiB chunk', async () => {
    const f = await syncFixture();
    try {
      const src = f.layer('src');
      await mkdir(src);
      const big = join(src, 'big.bin');
      await writeFile(big, randomBytes(40 * MIB));
      const first = await f.sync.sync('ws', src);
      assert.equal(first.uploadedBytes, 40 * MIB);
      const fh = await open(big, 'r+');
      try {
        await fh.write(Buffer.from([0x42]), 0, 1, 21 * MIB + 7);
      } finally {
        await fh.close();
      }
      const r = await f.sync.sync('ws', src);
      assert.ok(r.version);
      assert.equal(r.uploadedBlobs, 1);
      assert.ok(r.uploadedBytes <= 8 * MIB, `uploaded ${r.uploadedBytes}`);
      const dst = f.layer('dst');
      await f.sync.restore('ws', dst);
      assert.ok((await readFile(join(dst, 'big.bin'))).equals(await readFile(big)));
    } finally {
      await f.cleanup();
    }
  });

  it('keeps the last N versions, newest first, and restores an older one', async () => {
    const f = await syncFixture({ historyLimit: 3 });
    try {
      const src = f.layer('src');
      await mkdir(src);
      const versions: string[] = [];
      for (let i = 0; i < 5; i++) {
        await writeFile(join(src, 'counter'), `v${i}`);
        const r = await f.sync.sync('ws', src);
        versions.push(r.version!);
      }
      const h = await f.sync.history('ws');
      assert.deepEqual(h.map((v) => v.version), versions.slice(2).reverse());
      await f.sync.restore('ws', f.layer('old'), { version: versions[2] });
      assert.equal(await readFile(join(f.layer('old'), 'counter'), 'utf8'), 'v2');
      await assert.rejects(f.sync.restore('ws', f.layer('gone'), { version: versions[0] }), { code: 'VERSION_NOT_FOUND' });
      // gc drops the chunks only the pruned versions used.
      const before = (await blobFiles(f.dir)).length;
      const { deletedBlobs } = await f.sync.gc();
      assert.equal(deletedBlobs, 2);
      assert.equal((await blobFiles(f.dir)).length, before - 2);
    } finally {
      await f.cleanup();
    }
  });

  it('delete removes the workspace and its own blobs but keeps blobs another workspace uses', async () => {
    const f = await syncFixture();
    try {
      const a = f.layer('a');
      const b = f.layer('b');
      await mkdir(a);
      await mkdir(b);
      await writeFile(join(a, 'shared'), 'same bytes in both');
      await writeFile(join(b, 'shared'), 'same bytes in both');
      await writeFile(join(a, 'only-a'), 'only in a');
      await f.sync.sync('a', a);
      await f.sync.sync('b', b);
      assert.equal((await blobFiles(f.dir)).length, 2);
      await f.sync.delete('a');
      assert.deepEqual(await f.sync.history('a'), []);
      assert.equal((await blobFiles(f.dir)).length, 1);
      await f.sync.restore('b', f.layer('b2'));
      assert.equal(await readFile(join(f.layer('b2'), 'shared'), 'utf8'), 'same bytes in both');
    } finally {
      await f.cleanup();
    }
  });

  it('detects a corrupted or missing blob on restore and names the file', async () => {
    const f = await syncFixture();
    try {
      const src = f.layer('src');
      await mkdir(src);
      await writeFile(join(src, 'data.txt'), 'precious bytes');
      await f.sync.sync('ws', src);
      const [blob] = await blobFiles(f.dir);
      await writeFile(blob!, 'precious byteZ');
      await assert.rejects(f.sync.restore('ws', f.layer('r1')), (err: WorkspaceSyncError) => {
        assert.equal(err.code, 'CORRUPT_BLOB');
        assert.equal(err.path, 'data.txt');
        assert.equal(err.retryable, false);
        return true;
      });
      await rm(blob!);
      await assert.rejects(f.sync.restore('ws', f.layer('r2')), { code: 'MISSING_BLOB', path: 'data.txt' });
      await assert.rejects(f.sync.restore('ws', f.layer('r2')), { code: 'INVALID_LAYER' });
    } finally {
      await f.cleanup();
    }
  });

  it('a sync that dies between blob uploads and the manifest leaves the previous version whole', async () => {
    let failAfter = Infinity;
    let puts = 0;
    const f0 = await syncFixture();
    const inner = f0.store;
    const flaky: BlobStore = {
      driver: 'flaky', head: (k) => inner.head(k), get: (k, o) => inner.get(k, o), list: (p) => inner.list(p), delete: (k) => inner.delete(k), close: () => inner.close(),
      put: async (k, d, o) => {
        if (++puts > failAfter) throw new BlobStoreError('flaky', 'put', k, new Error('connection reset'));
        return inner.put(k, d, o);
      },
    };
    const f = await syncFixture({}, flaky);
    try {
      const src = f.layer('src');
      await mkdir(src);
      await writeFile(join(src, 'a'), 'version one');
      const v1 = await f.sync.sync('ws', src);
      const want = await treeHash(src);
      for (let i = 0; i < 5; i++) await writeFile(join(src, `n${i}`), randomBytes(1000));
      puts = 0;
      failAfter = 3;
      await assert.rejects(f.sync.sync('ws', src), { code: 'STORE_UNAVAILABLE', retryable: true });
      assert.equal((await f.sync.latest('ws'))?.version, v1.version);
      // An abort mid-walk (signalled as the second file is opened) is typed too and changes nothing.
      const ac = new AbortController();
      let opened = 0;
      const aborting = new WorkspaceSync({ blobs: flaky, log: silentLogger(), cacheDir: join(f.dir, 'cache'), beforeOpen: () => void (++opened === 2 && ac.abort()) });
      failAfter = Infinity;
      await assert.rejects(aborting.sync('ws', src, { signal: ac.signal }), { code: 'ABORTED' });
      assert.equal(opened, 2);
      assert.equal((await f.sync.latest('ws'))?.version, v1.version);
      await f.sync.restore('ws', f.layer('r1'));
      assert.equal((await treeHash(f.layer('r1'))).hash, want.hash);
      const v2 = await f.sync.sync('ws', src);
      assert.ok(v2.version && v2.version > v1.version!);
      assert.ok(v2.uploadedBlobs <= 2, `uploaded ${v2.uploadedBlobs}: the 3 chunks uploaded before the crash are not sent again`);
      await f.sync.restore('ws', f.layer('r2'));
      assert.equal((await treeHash(f.layer('r2'))).hash, (await treeHash(src)).hash);
    } finally {
      await f.cleanup();
      await f0.cleanup();
    }
  });

  it('SIGKILL of a process in the middle of a sync: previous version intact, next sync completes', async () => {
    const f = await syncFixture();
    try {
      const src = f.layer('src');
      await mkdir(src);
      await writeFile(join(src, 'a'), 'version one');
      const v1 = await f.sync.sync('ws', src);
      for (let i = 0; i < 20; i++) await writeFile(join(src, `n${i}`), randomBytes(200_000));
      const child = spawn(process.execPath, [fileURLToPath(new URL('./helpers/workspace-sync-child.js', import.meta.url)), join(f.dir, 'blobs'), join(f.dir, 'cache'), src], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      try {
        // The child reports each blob put and then stalls on the 5th; kill it there.
        await new Promise<void>((resolve, reject) => {
          let seen = '';
          child.stdout!.setEncoding('utf8').on('data', (s: string) => {
            seen += s;
            if (seen.split('\n').filter((l) => l === 'put').length >= 5) resolve();
          });
          child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
        });
      } finally {
        child.kill('SIGKILL');
        await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
      }
      assert.deepEqual((await f.sync.history('ws')).map((v) => v.version), [v1.version]);
      const next = await f.sync.sync('ws', src);
      assert.ok(next.version);
      await f.sync.restore('ws', f.layer('r'));
      assert.equal((await treeHash(f.layer('r'))).hash, (await treeHash(src)).hash);
    } finally {
      await f.cleanup();
    }
  });

  it('rejects a bad workspace key and a missing or symlinked layer directory', async () => {
    const f = await syncFixture();
    try {
      await assert.rejects(f.sync.sync('../x', f.dir), { code: 'INVALID_ARGUMENT' });
      await assert.rejects(f.sync.sync('ws', join(f.dir, 'nope')), { code: 'INVALID_LAYER' });
      await assert.rejects(f.sync.restore('never', f.layer('x')), { code: 'VERSION_NOT_FOUND' });
      assert.equal(await f.sync.latest('never'), undefined);
    } finally {
      await f.cleanup();
    }
  });
});
