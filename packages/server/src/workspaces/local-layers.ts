/**
 * Workspace layers on this host's disk.
 *
 * Each workspace has a directory `<root>/<userId>/<name>/` holding `disk.img`, a sparse ext4 file
 * system of the workspace's `disk_gb` (the host kernel has no quotas, so a file system of its own is
 * what caps the layer: a job that fills it gets ENOSPC, the host disk keeps the rest). While a job
 * or a sync uses the workspace, the image is loop-mounted at `mnt/` and `mnt/upper` is the overlay
 * upper directory (the sandbox driver puts its overlay work dirs beside it, on the same file
 * system). Mounts are reference-counted: a workspace used as a job's layer and as another job's
 * base at once is mounted once (mounting one ext4 image twice would corrupt it). Nothing stays
 * mounted when no one uses the workspace.
 */
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../host/exec.js';
import { mountsUnder, unmountUnder } from '../host/mounts.js';

type Exec = (cmd: string, args: string[], opts?: { what?: string }) => Promise<{ stdout: string }>;

interface Mounted {
  count: number;
  ready: Promise<string>;
}

export class LocalLayers {
  private readonly mounts = new Map<string, Mounted>();
  /** Unmounts in progress: a new acquire of the same layer waits for them. */
  private readonly unmounting = new Map<string, Promise<void>>();

  /** @param root the directory holding every workspace layer (`<dataDir>/workspaces`) */
  constructor(
    readonly root: string,
    private readonly exec: Exec = run,
  ) {}

  /** The workspace's directory (names are validated by the service before they get here). */
  dirOf(userId: string, name: string): string {
    return join(this.root, userId, name);
  }

  private image(userId: string, name: string): string {
    return join(this.dirOf(userId, name), 'disk.img');
  }

  /** Whether the workspace's layer exists on this host. */
  async exists(userId: string, name: string): Promise<boolean> {
    return stat(this.image(userId, name)).then(
      () => true,
      (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? false : Promise.reject(err)),
    );
  }

  /** Makes an empty layer of `diskGb` GiB (sparse: it takes only what is written). */
  async create(userId: string, name: string, diskGb: number): Promise<void> {
    const dir = this.dirOf(userId, name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const img = this.image(userId, name);
    const tmp = `${img}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.truncate(Math.max(1, Math.ceil(diskGb)) * 1024 ** 3);
    } finally {
      await fh.close();
    }
    try {
      // A journal: unlike a throw-away layer, a workspace must survive a host crash.
      await this.exec('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=1,nodiscard', '-m', '0', tmp], { what: 'apt-get install e2fsprogs' });
      await rename(tmp, img);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * Mounts the layer (or takes another reference to its mount) and returns its upper directory.
   * Every `acquire` needs one `release`.
   */
  acquire(userId: string, name: string): Promise<string> {
    const dir = this.dirOf(userId, name);
    let m = this.mounts.get(dir);
    if (!m) {
      const mnt = join(dir, 'mnt');
      const ready = (async () => {
        await this.unmounting.get(dir);
        await mkdir(mnt, { recursive: true, mode: 0o700 });
        await this.exec('mount', ['-t', 'ext4', '-o', 'loop,noatime,discard', this.image(userId, name), mnt], { what: 'the kernel needs ext4 and loop devices' });
        const upper = join(mnt, 'upper');
        await mkdir(upper, { recursive: true, mode: 0o755 });
        return upper;
      })();
      m = { count: 0, ready };
      this.mounts.set(dir, m);
      ready.catch(() => this.mounts.delete(dir));
    }
    m.count++;
    return m.ready;
  }

  /** Drops one reference; the last one unmounts. */
  async release(userId: string, name: string): Promise<void> {
    const dir = this.dirOf(userId, name);
    const m = this.mounts.get(dir);
    if (!m) return;
    m.count--;
    if (m.count > 0) return;
    this.mounts.delete(dir);
    const done = m.ready.then(
      () => unmountUnder(join(dir, 'mnt')),
      () => undefined, // the mount failed: nothing to undo, the acquirer saw the error
    );
    this.unmounting.set(dir, done);
    try {
      await done;
    } finally {
      if (this.unmounting.get(dir) === done) this.unmounting.delete(dir);
    }
  }

  /** Whether anyone holds the layer mounted. */
  inUse(userId: string, name: string): boolean {
    return this.mounts.has(this.dirOf(userId, name));
  }

  /**
   * Grows the layer's file system to `diskGb` GiB (never shrinks). Offline: the layer must not be
   * mounted (online growth is refused on loop-mounted images here). Returns false when it was
   * already that large.
   */
  async grow(userId: string, name: string, diskGb: number): Promise<boolean> {
    await this.unmounting.get(this.dirOf(userId, name));
    if (this.inUse(userId, name)) throw new Error(`workspace layer ${name} is mounted; it can only grow while unused`);
    const img = this.image(userId, name);
    const bytes = Math.ceil(diskGb) * 1024 ** 3;
    if ((await stat(img)).size >= bytes) return false;
    const fh = await open(img, 'r+');
    try {
      await fh.truncate(bytes);
    } finally {
      await fh.close();
    }
    // resize2fs wants a freshly checked file system; e2fsck exits 1 when it fixed something.
    await this.exec('e2fsck', ['-f', '-p', img]).catch((err: { exitCode?: number }) => {
      if (err.exitCode !== 1) throw err;
    });
    await this.exec('resize2fs', [img]);
    return true;
  }

  /** Disk space the layer takes on this host in bytes (allocated blocks of the sparse image). */
  async sizeBytes(userId: string, name: string): Promise<number> {
    const s = await stat(this.image(userId, name)).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
    return s ? s.blocks * 512 : 0;
  }

  /** Removes the layer from this host (it must not be in use). */
  async remove(userId: string, name: string): Promise<void> {
    const dir = this.dirOf(userId, name);
    await this.unmounting.get(dir);
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }

  /** Unmounts layers a previous daemon left mounted (it crashed while jobs ran). */
  async sweep(): Promise<number> {
    const stale = await mountsUnder(this.root);
    await unmountUnder(this.root);
    return stale.length;
  }

  /** Unmounts every layer this object mounted (daemon shutdown, after the jobs ended). */
  async shutdown(): Promise<void> {
    this.mounts.clear();
    await unmountUnder(this.root);
  }
}
