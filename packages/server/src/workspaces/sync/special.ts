/**
 * What Node has no API for: reading and setting the overlayfs opaque xattr, and creating whiteouts
 * (character device 0/0). Reads go through an fd the walker already verified (passed to the child as
 * fd 3 and named `/proc/self/fd/3`), so a directory swapped for a symlink is never followed.
 * Needs `getfattr`/`setfattr` (Debian package `attr`) and `mknod` (coreutils).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

export const OPAQUE_XATTR = 'trusted.overlay.opaque';

function run(cmd: string, args: string[], fd?: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe'];
    if (fd !== undefined) stdio.push(fd);
    const child = spawn(cmd, args, { stdio });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('latin1').on('data', (s: string) => (out += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT' ? new Error(`${cmd} is not installed: apt-get install attr`) : e),
    );
    child.once('close', (code) => resolve({ code, out, err }));
  });
}

const PROBE_SCRIPT = `import errno, os, sys
for line in sys.stdin:
    try:
        r = 'y' if os.getxattr(line.rstrip('\\n'), '${OPAQUE_XATTR}') == b'y' else 'n'
    except OSError as e:
        r = 'n' if e.errno in (errno.ENODATA, errno.ENOTSUP) else 'E' + str(e)
    sys.stdout.write(r + '\\n')
    sys.stdout.flush()
`;

/**
 * Reads the opaque mark of directories through one long-lived python3 helper (a fork of the
 * daemon per directory costs milliseconds). The helper opens `/proc/<daemon pid>/fd/<fd>`, the
 * very directory the walker holds open. Without python3 it falls back to one getfattr per directory.
 */
export class OpaqueProbe {
  private child: ChildProcessWithoutNullStreams | undefined;
  private waiting: ((answer: string) => void)[] = [];
  private broken = false;

  async isOpaque(fd: number): Promise<boolean> {
    if (this.broken) return isOpaqueDir(fd);
    const child = this.child ?? this.start();
    const answer = await new Promise<string>((resolve) => {
      this.waiting.push(resolve);
      child.stdin.write(`/proc/${process.pid}/fd/${fd}\n`);
    });
    if (answer === 'y' || answer === 'n') return answer === 'y';
    if (answer === '\0') {
      this.broken = true;
      return isOpaqueDir(fd);
    }
    throw new Error(`reading ${OPAQUE_XATTR} failed: ${answer.slice(1)}`);
  }

  private start(): ChildProcessWithoutNullStreams {
    const child = spawn('python3', ['-c', PROBE_SCRIPT], { stdio: 'pipe' });
    this.child = child;
    const fail = () => {
      this.child = undefined;
      this.broken = true;
      for (const w of this.waiting.splice(0)) w('\0');
    };
    child.once('error', fail);
    child.once('exit', fail);
    child.stdin.on('error', fail);
    createInterface({ input: child.stdout }).on('line', (line) => this.waiting.shift()?.(line));
    return child;
  }

  /** Ends the helper. */
  close(): void {
    this.child?.stdin.end();
    this.child = undefined;
  }
}

/** Whether the directory open as `fd` carries `trusted.overlay.opaque=y` (one getfattr run). */
export async function isOpaqueDir(fd: number): Promise<boolean> {
  const r = await run('getfattr', ['--only-values', '-n', OPAQUE_XATTR, '/proc/self/fd/3'], fd);
  if (r.code === 0) return r.out === 'y';
  if (/No such attribute|Operation not supported/.test(r.err)) return false;
  throw new Error(`getfattr ${OPAQUE_XATTR} failed: ${r.err.trim()}`);
}

/** Marks the directory open as `fd` (created by restore) opaque. */
export async function setOpaqueDir(fd: number): Promise<void> {
  const r = await run('setfattr', ['-n', OPAQUE_XATTR, '-v', 'y', '/proc/self/fd/3'], fd);
  if (r.code !== 0) throw new Error(`setfattr ${OPAQUE_XATTR} failed: ${r.err.trim()}`);
}

/**
 * Creates an overlayfs whiteout (char device 0/0) named `name` (any bytes) in the directory open
 * as `fd`: made under a plain temporary name first, then renamed, so the name never passes
 * through a command line.
 */
export async function makeWhiteout(fd: number, tempName: string): Promise<void> {
  const r = await run('mknod', ['-m', '000', '--', `/proc/self/fd/3/${tempName}`, 'c', '0', '0'], fd);
  if (r.code !== 0) throw new Error(`mknod failed: ${r.err.trim()}`);
}

const SEEK_SCRIPT = `import os
fd, end, pos = 3, os.fstat(3).st_size, 0
while pos < end:
    try:
        a = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    b = os.lseek(fd, a, os.SEEK_HOLE)
    print(a, b)
    pos = b
`;

/**
 * The data ranges ([start, end) byte offsets) of the file open as `fd`, by SEEK_DATA/SEEK_HOLE
 * (Node has no lseek, so python3 does it on the same fd). Undefined when that is not possible:
 * the caller then reads the whole file, which is slower but still correct.
 */
export async function dataRanges(fd: number): Promise<[number, number][] | undefined> {
  const r = await run('python3', ['-c', SEEK_SCRIPT], fd).catch(() => undefined);
  if (!r || r.code !== 0) return undefined;
  return r.out.split('\n').filter(Boolean).map((l) => l.split(' ').map(Number) as [number, number]);
}
