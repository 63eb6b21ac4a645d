/**
 * The files API on a stored workspace version (a sleeping job's workspace, or a workspace by id):
 * list and read from the manifest and its chunks, without a sandbox. Read-only; symlinks are listed
 * with their target but never followed (no sandbox resolves them), and only the workspace's own
 * layer is there, not the base image.
 */
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import type { SnapshotEntry, WorkspaceSnapshot } from '../workspaces/sync/index.js';
import type { ReadInfo } from './guest-fs.js';
import { FsError, type FileEntry } from './types.js';

/** `/root/x/../y` -> `root/y` (lexical: nothing is followed in a stored version). */
function rel(abs: string): string {
  return posix.normalize(abs).replace(/^\/+/, '').replace(/\/+$/, '');
}

function toEntry(e: SnapshotEntry): FileEntry {
  return {
    name: posix.basename(e.path),
    path: `/${e.path}`,
    type: e.type,
    size: e.size,
    mode: e.mode,
    mtime: new Date(e.mtimeMs).toISOString(),
    ...(e.target !== undefined ? { target: e.target } : {}),
  };
}

export class SnapshotFs {
  /** `snap` undefined: the workspace was never synced (every path is missing). */
  constructor(private readonly snap: WorkspaceSnapshot | undefined) {}

  async list(path: string, depth: number): Promise<{ entries: FileEntry[]; truncated: boolean }> {
    const r = rel(path);
    const prefix = r === '' ? '' : `${r}/`;
    const base = r === '' ? 0 : r.split('/').length;
    let self: SnapshotEntry | undefined;
    const found = this.snap
      ? await this.snap.scan((e) => {
          if (e.path === r) {
            self = e;
            return false;
          }
          return e.path.startsWith(prefix) && e.path.split('/').length - base <= depth;
        })
      : [];
    if (self && self.type !== 'dir') return { entries: [toEntry(self)], truncated: false };
    if (!self && found.length === 0 && r !== '') throw new FsError('ENOENT', `no such file or directory in the stored workspace: ${path}`);
    return { entries: found.map(toEntry), truncated: false };
  }

  async read(path: string, offset: number, length: number | undefined): Promise<{ info: ReadInfo; body: Readable }> {
    const r = rel(path);
    const [e] = this.snap ? await this.snap.scan((x) => x.path === r) : [];
    if (!e) throw new FsError('ENOENT', `no such file in the stored workspace: ${path}`);
    if (e.type === 'dir') throw new FsError('EISDIR', `is a directory: ${path}`);
    if (e.type !== 'file') throw new FsError('ENOTREG', `is a symlink (not followed in a stored workspace): ${path}`);
    const start = offset < 0 ? Math.max(0, e.size + offset) : Math.min(offset, e.size);
    const avail = e.size - start;
    const len = length === undefined || length > avail ? avail : length;
    return {
      info: { size: e.size, mode: e.mode, mtime: new Date(e.mtimeMs).toISOString(), length: len },
      body: this.snap!.read(e, start, len),
    };
  }
}
