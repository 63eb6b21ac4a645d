/** Mount table helpers: the sweep and every cleanup find their mounts by path prefix. */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { run } from './exec.js';

/** Decodes the octal escapes (\040 for space) of /proc/self/mountinfo. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points at or under `dir`, deepest first (the order to unmount them). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const base = resolve(dir);
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    const mp = unescape(fields[4]!);
    if (mp === base || mp.startsWith(base + '/')) found.push(mp);
  }
  return found.sort((a, b) => b.length - a.length);
}

/** Unmounts everything at or under `dir` (lazily when busy). */
export async function unmountUnder(dir: string): Promise<void> {
  for (const mp of await mountsUnder(dir)) {
    await run('umount', [mp]).catch(() => run('umount', ['-l', mp]).catch(() => {}));
  }
}

/** True when `dir` is a mount point. */
export async function isMountPoint(dir: string): Promise<boolean> {
  const base = resolve(dir);
  return (await mountsUnder(base)).includes(base);
}
