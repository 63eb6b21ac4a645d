/**
 * The base image: a Debian bookworm root file system (debootstrap minbase + the tools Mags users
 * expect), packed read-only as erofs under `<imageDir>/<version>/rootfs.erofs`. The version is a
 * short hash of the package list and the recipe, so changing either yields a new image beside the
 * old one. Builds run in a temp dir renamed into place at the end and under an flock, so two
 * builders (two daemons, a daemon and `mags server image build`) never collide.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, copyFile, lchown, lstat, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { run, runStreaming } from '../host/exec.js';
import { mountsUnder } from '../host/mounts.js';

/** Options of {@link buildImage}. */
export interface BuildImageOptions {
  /** Directory holding one sub-directory per image version. */
  imageDir: string;
  /** Rebuild even when the current version exists. */
  force?: boolean;
  /** Progress lines for people ("fetching", "installing 12/180", "packing"). */
  onProgress?: (message: string) => void;
  /** Debian mirror (config: MAGS_DEBIAN_MIRROR); default http://deb.debian.org/debian. */
  mirror?: string;
  log?: Logger;
}

/** A built base image. */
export interface BuiltImage {
  version: string;
  /** Path of the read-only erofs root file system. */
  path: string;
}

export const DEFAULT_DEBIAN_MIRROR = 'http://deb.debian.org/debian';

/** Bump when the build steps change in a way that changes the image. */
const RECIPE_VERSION = 5;
/**
 * Sandboxes run in a user namespace: uid/gid 0-65535 inside are host ids ID_BASE+0..65535, so root
 * in a sandbox is an unprivileged user on the host. The image's files are stored already shifted
 * by ID_BASE (far above any /etc/subuid range) so the read-only layer needs no id mapping.
 */
export const ID_BASE = 1_000_000_000;
export const ID_COUNT = 65536;
const SUITE = 'bookworm';
/** Installed by debootstrap itself (small, dependency-simple). */
const BASE_PACKAGES = ['bash', 'ca-certificates', 'procps', 'less', 'vim-tiny'];
/** Installed with apt-get inside the new root (npm's dependency tree is too deep for debootstrap). */
const EXTRA_PACKAGES = ['curl', 'wget', 'git', 'python3', 'python3-pip', 'python3-venv', 'nodejs', 'npm', 'openssh-sftp-server'];

/**
 * Certificate authorities the host's administrator added (Debian's place for local CAs). They are
 * copied into the image so sandboxes trust what the host trusts: behind a TLS-inspecting proxy,
 * `npm install`, `pip install` and `curl https://...` work in a sandbox exactly as on the host.
 */
export const HOST_LOCAL_CA_DIR = '/usr/local/share/ca-certificates';

function hostLocalCas(dir = HOST_LOCAL_CA_DIR): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => n.endsWith('.crt'))
      .sort();
  } catch {
    return [];
  }
}

/** The version the current recipe produces on this host (the host's local CAs are part of it). */
export function imageVersion(): string {
  const cas = hostLocalCas().map((n) => [n, createHash('sha256').update(readFileSync(join(HOST_LOCAL_CA_DIR, n))).digest('hex')]);
  const recipe = JSON.stringify({ RECIPE_VERSION, SUITE, BASE_PACKAGES, EXTRA_PACKAGES, variant: 'minbase', ID_BASE, cas });
  return createHash('sha256').update(recipe).digest('hex').slice(0, 12);
}

/** The current image when it is built, else null. */
export function findImage(imageDir: string): BuiltImage | null {
  const version = imageVersion();
  const path = join(imageDir, version, 'rootfs.erofs');
  return existsSync(path) ? { version, path } : null;
}

/** Builds the base image unless its current version already exists (or `force`). */
export async function buildImage(opts: BuildImageOptions): Promise<BuiltImage> {
  const progress = opts.onProgress ?? (() => {});
  const existing = findImage(opts.imageDir);
  if (existing && !opts.force) return existing;
  await mkdir(opts.imageDir, { recursive: true });
  const lock = await acquireLock(join(opts.imageDir, '.build.lock'), progress);
  try {
    // Another builder may have finished while we waited for the lock.
    const done = findImage(opts.imageDir);
    if (done && !opts.force) return done;
    return await build(opts, progress);
  } finally {
    lock.kill();
  }
}

/** Holds an exclusive flock(1) on `path` until the returned child is killed (or we die). */
async function acquireLock(path: string, progress: (m: string) => void): Promise<ChildProcess> {
  const child = spawn('flock', ['-x', path, 'sh', '-c', 'echo locked; exec cat'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = setTimeout(() => progress('waiting for another image build to finish'), 500);
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`flock ${path} exited with ${code}: apt-get install util-linux`)));
      child.stdout!.once('data', () => resolve());
    });
  } finally {
    clearTimeout(waiting);
  }
  return child;
}

async function build(opts: BuildImageOptions, progress: (m: string) => void): Promise<BuiltImage> {
  const version = imageVersion();
  const mirror = opts.mirror ?? DEFAULT_DEBIAN_MIRROR;
  const tmp = join(opts.imageDir, `.build-${version}-${process.pid}`);
  const root = join(tmp, 'root');
  const debCache = join(opts.imageDir, 'cache', 'debs');
  // We hold the lock, so any other .build-* dir is what a killed builder left.
  for (const name of await readdir(opts.imageDir)) {
    if (name.startsWith('.build-')) await cleanupBuildDir(join(opts.imageDir, name));
  }
  await mkdir(debCache, { recursive: true });
  await mkdir(tmp, { recursive: true });
  const started = Date.now();
  try {
    progress(`building base image ${version} (Debian ${SUITE}, mirror ${mirror}); this takes a few minutes`);
    await debootstrap(root, mirror, debCache, progress);
    await aptInstall(root, debCache, progress);
    progress('configuring');
    await configure(root, mirror);
    progress('shifting file ownership into the sandbox id range');
    await shiftOwnership(root, ID_BASE);
    progress('packing read-only image (erofs)');
    const erofs = join(tmp, 'rootfs.erofs');
    await run('mkfs.erofs', ['-zlz4hc', '--quiet', erofs, root]);
    await rm(root, { recursive: true, force: true });
    await writeFile(
      join(tmp, 'manifest.json'),
      JSON.stringify(
        { version, suite: SUITE, packages: [...BASE_PACKAGES, ...EXTRA_PACKAGES], id_base: ID_BASE, mirror, built_at: new Date().toISOString() },
        null,
        2,
      ) + '\n',
    );
    const final = join(opts.imageDir, version);
    if (existsSync(final)) {
      // A forced rebuild: running daemons keep their loop-mounted copy of the old file.
      const old = join(opts.imageDir, `.build-old-${version}-${Date.now()}`);
      await rename(final, old);
      await rename(tmp, final);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, final);
    }
    progress(`base image ${version} ready in ${Math.round((Date.now() - started) / 1000)} s`);
    return { version, path: join(final, 'rootfs.erofs') };
  } catch (err) {
    await cleanupBuildDir(tmp);
    throw err;
  }
}

async function debootstrap(root: string, mirror: string, debCache: string, progress: (m: string) => void): Promise<void> {
  progress('fetching Debian base packages');
  let fetched = 0;
  let unpacked = 0;
  let configured = 0;
  await runStreaming(
    'debootstrap',
    ['--variant=minbase', `--cache-dir=${debCache}`, `--include=${BASE_PACKAGES.join(',')}`, SUITE, root, mirror],
    (line) => {
      if (line.startsWith('I: Retrieving ')) {
        if (++fetched % 25 === 0) progress(`fetching ${fetched} packages`);
      } else if (line.startsWith('I: Validating')) {
        // one per package; silent
      } else if (line.startsWith('I: Extracting')) {
        if (unpacked === 0) progress('extracting base packages');
        unpacked++;
      } else if (line.startsWith('I: Unpacking')) {
        unpacked++;
      } else if (line.startsWith('I: Configuring')) {
        if (++configured % 20 === 0 || configured === 1) progress(`configuring base packages (${configured})`);
      } else if (line.startsWith('E:') || line.startsWith('W:')) {
        progress(line);
      }
    },
    { what: 'debootstrap (apt-get install debootstrap; check MAGS_DEBIAN_MIRROR is reachable)' },
  );
}

/** Runs apt-get inside the new root with /proc, /dev and the shared .deb cache mounted. */
async function aptInstall(root: string, debCache: string, progress: (m: string) => void): Promise<void> {
  const archives = join(root, 'var/cache/apt/archives');
  await mkdir(archives, { recursive: true });
  const mounts: string[] = [];
  try {
    await run('mount', ['-t', 'proc', 'proc', join(root, 'proc')]);
    mounts.push(join(root, 'proc'));
    await run('mount', ['--bind', debCache, archives]);
    mounts.push(archives);
    progress('updating package lists');
    await runStreaming('chroot', [root, 'apt-get', 'update'], () => {}, { what: 'apt-get update in the image' });
    let total = 0;
    let done = 0;
    await runStreaming(
      'chroot',
      [root, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '--no-install-recommends', ...EXTRA_PACKAGES],
      (line) => {
        const m = /^(\d+) upgraded, (\d+) newly installed/.exec(line);
        if (m) {
          total = Number(m[2]);
          progress(`installing ${total} packages`);
        } else if (line.startsWith('Get:')) {
          // downloads are cached across builds; nothing to say per file
        } else if (line.startsWith('Setting up ')) {
          done++;
          if (done % 20 === 0 || done === total) progress(`installing ${done}/${total}`);
        }
      },
      { what: 'apt-get install in the image' },
    );
  } finally {
    for (const m of mounts.reverse()) await run('umount', ['-l', m]).catch(() => {});
  }
}

async function configure(root: string, mirror: string): Promise<void> {
  await writeFile(join(root, 'etc/hostname'), 'mags-vm\n');
  await writeFile(
    join(root, 'etc/hosts'),
    '127.0.0.1\tlocalhost\n127.0.1.1\tmags-vm\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n',
  );
  await writeFile(join(root, 'etc/apt/sources.list'), `deb ${mirror} ${SUITE} main\n`);
  // The sandbox gets its resolver config bind-mounted here; the file must exist as a mount point.
  await rm(join(root, 'etc/resolv.conf'), { force: true });
  await writeFile(join(root, 'etc/resolv.conf'), '');
  // Mount point of the per-sandbox directory that holds the guest agent and its socket.
  await mkdir(join(root, 'run/mags'), { recursive: true });
  await writeFile(join(root, 'root/.bashrc'), 'PS1="root@mags-vm:\\w# "\n', { flag: 'a' });
  // Sandboxes are throw-away machines: `pip install` goes into the system Python as users expect
  // (Debian otherwise refuses with "externally-managed-environment", PEP 668).
  await writeFile(join(root, 'etc/pip.conf'), '[global]\nbreak-system-packages = true\nroot-user-action = ignore\n');
  const cas = hostLocalCas();
  if (cas.length) {
    await mkdir(join(root, 'usr/local/share/ca-certificates'), { recursive: true });
    for (const n of cas) await copyFile(join(HOST_LOCAL_CA_DIR, n), join(root, 'usr/local/share/ca-certificates', n));
    await run('chroot', [root, 'update-ca-certificates']);
  }
  // Package lists stay in the image so `apt-get install` works without `apt-get update` first.
  await rm(join(root, 'var/cache/apt/archives'), { recursive: true, force: true });
  await mkdir(join(root, 'var/cache/apt/archives/partial'), { recursive: true });
  await rm(join(root, 'var/log'), { recursive: true, force: true });
  await mkdir(join(root, 'var/log/apt'), { recursive: true });
  await rm(join(root, 'debootstrap'), { recursive: true, force: true });
}

/** Adds `base` to the owner and group of every file under `root` (keeping setuid/setgid bits). */
async function shiftOwnership(root: string, base: number): Promise<void> {
  const seen = new Set<number>();
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path);
    // Hard links: shift each inode once.
    if (!st.isDirectory() && st.nlink > 1) {
      if (seen.has(st.ino)) return;
      seen.add(st.ino);
    }
    if (st.uid >= ID_COUNT || st.gid >= ID_COUNT) throw new Error(`${path} has an owner outside 0-${ID_COUNT - 1}`);
    await lchown(path, st.uid + base, st.gid + base);
    // chown clears setuid/setgid on files: put the mode back.
    if (!st.isSymbolicLink() && (st.mode & 0o6000) !== 0) await chmod(path, st.mode & 0o7777);
    if (st.isDirectory()) {
      for (const name of await readdir(path)) await walk(join(path, name));
    }
  };
  await walk(root);
}

/** Unmounts whatever a killed build left mounted inside `dir`, then removes it. */
async function cleanupBuildDir(dir: string): Promise<void> {
  for (const sub of ['root/var/cache/apt/archives', 'root/proc']) {
    await run('umount', ['-l', join(dir, sub)]).catch(() => {});
  }
  const left = await mountsUnder(dir);
  if (left.length > 0) throw new Error(`cannot remove ${dir}: still mounted: ${left.join(', ')}`);
  await rm(dir, { recursive: true, force: true });
}
