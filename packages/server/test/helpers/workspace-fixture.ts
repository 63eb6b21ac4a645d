import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, link, lutimes, mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/logger.js';
import { createBlobStore, type BlobStore } from '../../src/storage/blobs/index.js';
import { WorkspaceSync, type WorkspaceSyncOptions } from '../../src/workspaces/sync/index.js';
import { markOpaque, mkWhiteout } from './workspace-tree.js';

/** A temp dir with a fs blob store, a cache dir and room for layers; `cleanup` removes it all. */
export async function syncFixture(over: Partial<WorkspaceSyncOptions> = {}, blobs?: BlobStore) {
  const dir = await mkdtemp(join(tmpdir(), 'mags-wsync-test-'));
  const store = blobs ?? (await createBlobStore({ driver: 'fs', root: join(dir, 'blobs') }));
  const sync = new WorkspaceSync({ blobs: store, log: silentLogger(), cacheDir: join(dir, 'cache'), gcGraceMs: 0, ...over });
  return {
    dir, store, sync,
    layer: (name: string) => join(dir, name),
    cleanup: async () => {
      if (!blobs) await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A layer with every file type a workspace holds: files of several modes and owners, an empty
 * file, a sparse file, nested and empty directories, absolute, relative and dangling symlinks,
 * a hard link pair, a whiteout, an opaque directory, and names with a newline, spaces and bytes
 * that are not UTF-8. Owners are `shift + small id`.
 */
export async function buildTree(root: string, shift = 0): Promise<void> {
  const p = (rel: string) => join(root, rel);
  await mkdir(p('root/.cache/pip'), { recursive: true });
  await mkdir(p('usr/local/bin'), { recursive: true });
  await mkdir(p('empty'), { recursive: true });
  await mkdir(p('opaque/inner'), { recursive: true });
  await writeFile(p('root/hello.txt'), 'hello workspace\n');
  await writeFile(p('root/.cache/pip/blob.bin'), randomBytes(300_000));
  await writeFile(p('root/empty-file'), '');
  await writeFile(p('usr/local/bin/tool'), '#!/bin/sh\necho tool\n');
  await chmod(p('usr/local/bin/tool'), 0o755);
  await writeFile(p('root/secret'), 'x');
  await chmod(p('root/secret'), 0o600);
  await writeFile(p('root/sticky-dir-file'), 'y');
  await writeFile(p('opaque/inner/f'), 'inside opaque');
  markOpaque(p('opaque'));
  mkWhiteout(p('root/deleted-from-image'));
  await symlink('/usr/bin/python3', p('usr/local/bin/python'));
  await symlink('../hello.txt', p('root/.cache/rel-link'));
  await symlink('/nonexistent/dangling', p('root/dangling'));
  await writeFile(p('root/hard-a'), 'shared by a hard link');
  await link(p('root/hard-a'), p('root/hard-b'));
  await writeFile(p('root/name with\nnewline'), 'newline');
  await writeFile(Buffer.from(`${root}/root/bad-utf8-\xff\xfe.txt`, 'latin1'), 'latin1 name');
  await writeFile(p('root/sparse'), 'head');
  await truncate(p('root/sparse'), 9 * 1024 * 1024);
  await chmod(p('empty'), 0o1777);
  if (shift !== 0) spawnSync('chown', ['-R', '-h', `${shift}:${shift}`, root]);
  await chown(p('root'), shift + 0, shift + 0);
  await chown(p('root/hello.txt'), shift + 1000, shift + 1000);
  await chown(p('usr/local/bin/tool'), shift + 0, shift + 50);
  await lutimes(p('root/dangling'), 1_600_000_000, 1_600_000_000);
}
