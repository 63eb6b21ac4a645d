/**
 * What only the filesystem blob store does: its on-disk layout, the temp files of interrupted puts
 * (never listed, removed at open), pruning of emptied directories, key/directory clashes and
 * hostile keys that must not reach outside the root. Also the key rules themselves.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  FsBlobStore,
  InvalidBlobKeyError,
  RESERVED_SEGMENT_PREFIX,
  validateBlobKey,
  validateBlobPrefix,
} from '../src/storage/blobs/index.js';
import { HOSTILE_KEYS, HOSTILE_PREFIXES, patternBody } from './helpers/blob-conformance.js';

async function withRoot(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mags-blobs-fs-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every path under `dir`, relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort();
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' });
  return Number(child.stdout.trim());
}

describe('blob keys', () => {
  it('accepts ordinary relative keys and prefixes', () => {
    for (const key of ['a', 'sha256/ab/cdef', 'workspaces/ws_1/manifests/0001.json', '...', '.hidden/x', 'ünï/cödé file', 'a..b/c..']) {
      assert.equal(validateBlobKey(key), key);
    }
    for (const prefix of ['', 'a', 'a/', 'sha256/ab', 'x/.', 'x/..', 'x/.blob']) assert.equal(validateBlobPrefix(prefix), prefix);
  });

  it('refuses hostile keys and prefixes with the rule they break', () => {
    for (const key of HOSTILE_KEYS) assert.throws(() => validateBlobKey(key), InvalidBlobKeyError, JSON.stringify(key));
    for (const prefix of HOSTILE_PREFIXES) assert.throws(() => validateBlobPrefix(prefix), InvalidBlobKeyError, JSON.stringify(prefix));
    assert.throws(() => validateBlobKey('../etc/passwd'), /invalid blob key "\.\.\/etc\/passwd": it has a "\.\." segment/);
    assert.throws(() => validateBlobKey('/etc/passwd'), /leading "\/": keys are relative/);
    assert.throws(() => validateBlobKey('a\\b'), /backslash/);
    assert.throws(() => validateBlobKey('a\0b'), /NUL/);
    assert.throws(() => validateBlobKey('x'.repeat(300)), /segment is longer than 255 bytes/);
    assert.throws(() => validateBlobKey('ab/'.repeat(400)), /longer than 1024 bytes/);
    assert.throws(() => validateBlobKey(`a/${RESERVED_SEGMENT_PREFIX}1.x`), /reserved/);
  });
});

describe('fs blob store on disk', () => {
  it('stores each key as a file at its path, readable by the owner only, with no temp file left', async () => {
    await withRoot(async (dir) => {
      const store = await FsBlobStore.open({ root: join(dir, 'blobs') });
      await store.put('sha256/ab/cdef', Buffer.from('content'));
      await store.put('big', patternBody(3 * 1024 * 1024).stream);
      assert.equal(await readFile(join(dir, 'blobs', 'sha256', 'ab', 'cdef'), 'utf8'), 'content');
      assert.deepEqual(await tree(join(dir, 'blobs')), ['big', 'sha256', 'sha256/ab', 'sha256/ab/cdef']);
      assert.equal((await stat(join(dir, 'blobs', 'big'))).mode & 0o777, 0o600);
      assert.equal((await stat(join(dir, 'blobs'))).mode & 0o777, 0o700);
      await store.close();
    });
  });

  it('removes temp files of crashed puts at open, keeps those of live writers, never lists them', async () => {
    await withRoot(async (root) => {
      await mkdir(join(root, 'ws', 'a'), { recursive: true });
      const crashed = join(root, 'ws', 'a', `${RESERVED_SEGMENT_PREFIX}${deadPid()}.0123456789abcdef`);
      const unparsable = join(root, `${RESERVED_SEGMENT_PREFIX}junk`);
      const live = join(root, 'ws', `${RESERVED_SEGMENT_PREFIX}1.fedcba9876543210`);
      const liveButOld = join(root, `${RESERVED_SEGMENT_PREFIX}1.00000000000000aa`);
      const ours = join(root, `${RESERVED_SEGMENT_PREFIX}${process.pid}.00000000000000bb`);
      for (const f of [crashed, unparsable, live, liveButOld, ours]) await writeFile(f, 'partial');
      const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
      await utimes(liveButOld, twoDaysAgo, twoDaysAgo);
      await writeFile(join(root, 'ws', 'a', 'blob'), 'whole');

      const store = await FsBlobStore.open({ root });
      assert.equal(store.sweptTempFiles, 3);
      const left = await tree(root);
      assert.ok(!left.includes('ws/a/' + crashed.split('/').pop()), 'the dead writer\'s temp file is gone');
      assert.ok(left.includes('ws/' + live.split('/').pop()), 'pid 1 is alive: its temp file stays');
      assert.ok(left.includes(ours.split('/').pop()!), 'this process\'s temp files stay');
      assert.ok(!left.includes(liveButOld.split('/').pop()!), 'a day-old temp file goes even if its pid lives');
      const listed: string[] = [];
      for await (const key of store.list('')) listed.push(key);
      assert.deepEqual(listed, ['ws/a/blob'], 'temp files are never listed');
      await store.close();
    });
  });

  it('a failed put leaves neither a blob nor a temp file', async () => {
    await withRoot(async (root) => {
      const store = await FsBlobStore.open({ root });
      await assert.rejects(store.put('d/x', patternBody(4 * 1024 * 1024, { failAfter: 1024 * 1024 }).stream));
      await assert.rejects(store.put('d/y', Readable.from([Buffer.from('abc')]), { size: 5 }));
      assert.deepEqual(await tree(root), ['d']);
      await store.close();
    });
  });

  it('prunes directories a delete empties, up to but not including the root', async () => {
    await withRoot(async (root) => {
      const store = await FsBlobStore.open({ root });
      await store.put('p/q/r/one', Buffer.from('1'));
      await store.put('p/two', Buffer.from('2'));
      await store.delete('p/q/r/one');
      assert.deepEqual(await tree(root), ['p', 'p/two']);
      await store.delete('p/two');
      assert.deepEqual(await tree(root), []);
      assert.ok((await stat(root)).isDirectory());
      await store.put('p/q/again', Buffer.from('3'));
      assert.deepEqual(await tree(root), ['p', 'p/q', 'p/q/again']);
      await store.close();
    });
  });

  it('refuses a key that is a directory of other keys, or lies under a blob', async () => {
    await withRoot(async (root) => {
      const store = await FsBlobStore.open({ root });
      await store.put('dir/child', Buffer.from('c'));
      await assert.rejects(store.put('dir', Buffer.from('d')), /other keys already live under it/);
      await store.put('file', Buffer.from('f'));
      await assert.rejects(store.put('file/child', Buffer.from('x')), InvalidBlobKeyError);
      assert.equal(await store.get('dir'), undefined, 'a directory is not a blob');
      assert.equal(await store.head('dir'), undefined);
      await store.delete('dir');
      assert.equal((await store.head('dir/child'))?.size, 1, 'deleting the directory-key removes nothing');
      assert.equal(await store.get('file/child'), undefined);
      await store.close();
    });
  });

  it('hostile keys create nothing inside or outside the root', async () => {
    await withRoot(async (dir) => {
      const root = join(dir, 'deep', 'blobs');
      const store = await FsBlobStore.open({ root });
      const before = await tree(dir);
      for (const key of [...HOSTILE_KEYS, '../../escape', '../sibling/x']) {
        await assert.rejects(store.put(key, Buffer.from('x')), InvalidBlobKeyError);
      }
      assert.deepEqual(await tree(dir), before);
      await store.close();
    });
  });
});
