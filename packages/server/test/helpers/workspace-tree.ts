import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/**
 * A hash of a tree: every path with its type, mode, owner, size, content hash, symlink target,
 * whiteout (char 0/0) and opaque mark. Two trees with the same hash are the same workspace.
 * `lines` lists what went in, for assertion messages.
 */
export async function treeHash(root: string, opts: { mtimes?: boolean } = {}): Promise<{ hash: string; lines: string[] }> {
  const lines: string[] = [];
  async function walk(rel: Buffer): Promise<void> {
    const dir = Buffer.concat([Buffer.from(`${root}/`), rel]);
    const names = (await readdir(dir, { encoding: 'buffer' })).sort(Buffer.compare);
    for (const name of names) {
      const path = rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
      const abs = Buffer.concat([Buffer.from(`${root}/`), path]);
      const st = await lstat(abs);
      let what: string;
      if (st.isDirectory()) what = `d opaque=${opaque(abs.toString('latin1'))}`;
      else if (st.isSymbolicLink()) what = `l -> ${(await readlink(abs, { encoding: 'buffer' })).toString('base64')}`;
      else if (st.isFile()) what = `f ${st.size} ${createHash('sha256').update(await readFile(abs)).digest('hex')}`;
      else if (st.isCharacterDevice() && st.rdev === 0) what = 'w';
      else what = `other ${st.mode.toString(8)}`;
      const mode = st.isSymbolicLink() ? '' : (st.mode & 0o7777).toString(8);
      lines.push(`${path.toString('base64')} ${what} ${mode} ${st.uid}:${st.gid}${opts.mtimes && !st.isDirectory() ? ` ${Math.round(st.mtimeMs)}` : ''}`);
      if (st.isDirectory()) await walk(path);
    }
  }
  await walk(Buffer.alloc(0));
  return { hash: createHash('sha256').update(lines.join('\n')).digest('hex'), lines };
}

function opaque(path: string): string {
  const r = spawnSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', Buffer.from(path, 'latin1').toString()], { encoding: 'latin1' });
  return r.status === 0 ? r.stdout : '-';
}

/** Sets trusted.overlay.opaque=y on a directory. */
export function markOpaque(path: string): void {
  const r = spawnSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`setfattr failed: ${r.stderr}`);
}

/** Creates a whiteout (char 0/0). */
export function mkWhiteout(path: string): void {
  const r = spawnSync('mknod', [path, 'c', '0', '0'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mknod failed: ${r.stderr}`);
}

/** A logger that keeps its records (to assert on skip lines). */
export function recordingLogger(): { log: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) records.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), records };
}
