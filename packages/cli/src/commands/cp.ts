import { Command } from 'commander';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, readdir, stat, symlink } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import { Readable, Writable } from 'node:stream';
import type { Mags } from '@mags/sdk';
import { usageError } from '../exit-codes.js';
import { parseRemote, type RemotePath } from '../remote-path.js';
import { action, client, note, withConnection, withExamples, type ConnectionFlags } from '../shared.js';

/** Long transfers: the timeout covers the wait for each answer's headers only. */
const TRANSFER_TIMEOUT_MS = 300_000;

/**
 * `mags cp`: files and directories between this machine and a persistent job's sandbox, with
 * `docker cp` semantics: a source directory lands inside an existing target directory under its own
 * name, or becomes the target when that does not exist; `SRC/.` copies a directory's contents.
 * Modes are kept; `-` as the local side means stdin or stdout (one file).
 */
export function cpCommand(): Command {
  const cmd = new Command('cp')
    .description("Copy files and directories into or out of a persistent job's sandbox (as docker cp)")
    .argument('<src>', 'LOCAL path, or <job>:<path>')
    .argument('<dest>', '<job>:<path>, or LOCAL path')
    .option('-q, --quiet', 'print nothing on success');
  withConnection(cmd);
  withExamples(cmd, ['mags cp ./app myjob:/root/', 'mags cp myjob:/root/out.csv .', 'mags cp myjob:/var/log/app - | tail', 'mags cp ./src/. myjob:/root/src']);
  return cmd.action(action(async (src: string, dest: string, flags: ConnectionFlags & { quiet?: boolean }) => {
    const from = parseRemote(src);
    const to = parseRemote(dest);
    if (from && to) throw usageError('mags cp copies between this machine and a sandbox, not between two sandboxes', 'Copy to a local directory first.');
    if (!from && !to) throw usageError('mags cp needs one side as <job>:<path>', 'e.g. mags cp ./file myjob:/root/');
    if (to?.workspace) throw usageError('A stored workspace is read-only: copy into a persistent job that uses it', `e.g. mags cp ${src} <job>:${to.path}`);
    if (from?.workspace) throw usageError('mags cp reads jobs; read a stored workspace with mags cat ws:<workspace>:<path> or mags ls', `e.g. mags cat ${src} > file`);
    const mags = await client(flags);
    const n = to ? await upload(mags, src, to) : await download(mags, from!, dest);
    if (!flags.quiet && dest !== '-') note(`Copied ${n.files} file${n.files === 1 ? '' : 's'} (${n.bytes} bytes)${n.skipped ? `, skipped ${n.skipped} (not a file, directory or symlink)` : ''}`);
  }));
}

interface Counts {
  files: number;
  bytes: number;
  skipped: number;
}

/** The entry at a remote path (undefined when absent), without listing a directory's contents. */
async function remoteEntry(mags: Mags, r: RemotePath) {
  const path = posix.normalize(r.path).replace(/\/+$/, '') || '/';
  if (path === '/') return { path: '/', type: 'dir' as const, mode: 0o755, size: 0 };
  try {
    const listed = await mags.files.list(r.job, posix.dirname(path));
    return listed.entries.find((e) => e.path === path);
  } catch (err) {
    if ((err as { code?: string }).code === 'PATH_NOT_FOUND') return undefined;
    throw err;
  }
}

async function upload(mags: Mags, local: string, to: RemotePath): Promise<Counts> {
  const counts: Counts = { files: 0, bytes: 0, skipped: 0 };
  if (local === '-') {
    const entry = await mags.files.write(to.job, to.path, Readable.toWeb(process.stdin) as ReadableStream<Uint8Array>, { timeoutMs: TRANSFER_TIMEOUT_MS });
    counts.files = 1;
    counts.bytes = entry.size;
    return counts;
  }
  const contentsOnly = local.endsWith('/.');
  const st = await stat(local).catch(() => {
    throw usageError(`No such local file or directory: ${local}`);
  });
  const target = await remoteEntry(mags, to);
  const intoDir = target?.type === 'dir' || to.path.endsWith('/');
  if (!st.isDirectory()) {
    const dest = intoDir ? posix.join(to.path, basename(local)) : to.path;
    await putFile(mags, to.job, local, dest, st.mode & 0o7777, counts);
    return counts;
  }
  // A directory: into an existing directory under its own name, else as the target itself.
  const root = target?.type === 'dir' && !contentsOnly ? posix.join(to.path, basename(local.replace(/\/+\.?$/, ''))) : to.path;
  await mags.files.mkdir(to.job, root, { parents: true, mode: st.mode & 0o7777 });
  await uploadTree(mags, to.job, local, root, counts);
  return counts;
}

async function uploadTree(mags: Mags, job: string, dir: string, remote: string, counts: Counts): Promise<void> {
  for (const ent of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const local = join(dir, ent.name);
    const dest = posix.join(remote, ent.name);
    const st = await lstat(local);
    if (st.isDirectory()) {
      await mags.files.mkdir(job, dest, { parents: true, mode: st.mode & 0o7777 });
      await uploadTree(mags, job, local, dest, counts);
    } else if (st.isFile()) {
      await putFile(mags, job, local, dest, st.mode & 0o7777, counts);
    } else {
      // Symlinks, FIFOs, sockets, devices: the files API writes regular files and directories only.
      counts.skipped++;
    }
  }
}

async function putFile(mags: Mags, job: string, local: string, dest: string, mode: number, counts: Counts): Promise<void> {
  const body = Readable.toWeb(createReadStream(local)) as ReadableStream<Uint8Array>;
  const entry = await mags.files.write(job, dest, body, { mode, timeoutMs: TRANSFER_TIMEOUT_MS });
  counts.files++;
  counts.bytes += entry.size;
}

async function download(mags: Mags, from: RemotePath, local: string): Promise<Counts> {
  const counts: Counts = { files: 0, bytes: 0, skipped: 0 };
  const contentsOnly = from.path.endsWith('/.');
  const src = contentsOnly ? from.path.slice(0, -2) || '/' : from.path;
  const entry = await remoteEntry(mags, { job: from.job, path: src });
  if (!entry) throw Object.assign(new Error(`No such file or directory in ${from.job}: ${src}`), { code: 'PATH_NOT_FOUND' });
  if (local === '-') {
    if (entry.type === 'dir') throw usageError('Only a file can be copied to stdout', `List the directory with: mags ls ${from.job}:${src}`);
    await getFile(mags, from.job, src, undefined, undefined, counts);
    return counts;
  }
  const localStat = await stat(local).catch(() => undefined);
  if (entry.type !== 'dir') {
    const dest = localStat?.isDirectory() ? join(local, posix.basename(src)) : local;
    await getFile(mags, from.job, src, dest, entry.mode, counts);
    return counts;
  }
  const root = localStat?.isDirectory() && !contentsOnly ? join(local, posix.basename(src)) : local;
  await mkdir(root, { recursive: true });
  const listed = await mags.files.list(from.job, src, { depth: 64 });
  if (listed.truncated) throw new Error(`The directory ${src} has too many entries to copy at once; copy its subdirectories one by one`);
  const prefix = src.endsWith('/') ? src : `${src}/`;
  for (const e of listed.entries) {
    const rel = e.path.slice(prefix.length);
    if (!rel || rel.split('/').includes('..')) continue;
    const dest = join(root, ...rel.split('/'));
    if (e.type === 'dir') await mkdir(dest, { recursive: true });
    else if (e.type === 'file') await getFile(mags, from.job, e.path, dest, e.mode, counts);
    else if (e.type === 'symlink' && e.target !== undefined) await symlink(e.target, dest);
    else counts.skipped++;
  }
  for (const e of listed.entries) if (e.type === 'dir') await chmod(join(root, ...e.path.slice(prefix.length).split('/')), e.mode);
  return counts;
}

async function getFile(mags: Mags, job: string, path: string, dest: string | undefined, mode: number | undefined, counts: Counts): Promise<void> {
  const body = await mags.files.readStream(job, path, { timeoutMs: TRANSFER_TIMEOUT_MS });
  let bytes = 0;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, c) {
      bytes += chunk.byteLength;
      c.enqueue(chunk);
    },
  });
  const sink = dest === undefined ? process.stdout : createWriteStream(dest);
  await body.pipeThrough(counter).pipeTo(Writable.toWeb(sink) as WritableStream<Uint8Array>);
  if (dest !== undefined && mode !== undefined) await chmod(dest, mode);
  counts.files++;
  counts.bytes += bytes;
}
