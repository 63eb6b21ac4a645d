/**
 * The writable layer of a sandbox and its root file system.
 *
 * Disk limit: this host's kernel has no quota support (neither ext4 nor XFS project quotas), so a
 * throw-away layer lives on its own file system: a sparse ext4 image of `diskGb` GiB (no journal;
 * it never outlives the sandbox) loop-mounted under the sandbox directory. Writes past the size fail
 * with ENOSPC inside the sandbox only; the host file only grows with what is really written
 * (`discard` gives space back on delete); page cache is charged to the sandbox like any file I/O,
 * unlike a tmpfs whose contents would count against the memory limit. One empty ext4 image per
 * disk size is made with mkfs.ext4 once (the template); each sandbox gets a sparse copy of it. The
 * agent binary's host helpers copy, loop-attach and mount it and the overlay in one fork+exec
 * (a few ms; mkfs + mount(8) took 20-50 ms). A workspace layer is a host directory the workspace code owns and syncs, so it is
 * used as the overlay upper directly and its size is not limited here.
 *
 * Root: overlayfs with lower = extra layers + the read-only erofs image, upper = the layer. Layers
 * that are host directories in the image's id range (workspace layers, an older image) are seen
 * through idmapped mounts made for the overlay and detached once it holds them, so a sandbox in its
 * own uid range writes them with the image's ids.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { run } from '../../../host/exec.js';
import { unmountUnder } from '../../../host/mounts.js';

export interface LayerPaths {
  /** Overlay mount point: the sandbox's root. */
  rootfs: string;
  upper: string;
  work: string;
  /** Mount point of the sized file system (throw-away layers only). */
  diskMount?: string;
  /** The loop device holding it, e.g. /dev/loop7. */
  loopDevice?: string;
}

export interface LayerRequest {
  /** Holds the layer's disk image and its mount point. */
  sandboxDir: string;
  /** Where the overlay root is mounted. */
  rootfs: string;
  sandboxId: string;
  imageMount: string;
  extraLowerDirs?: string[];
  workspaceLayerDir?: string;
  diskGb: number;
  /** Host uid/gid of root in this sandbox (its slot); default: the one given to the constructor. */
  rootId?: number;
  /**
   * The sandbox runs in its own uid range, but the first `lowers` lower directories and the
   * workspace layer are host directories in the image's id range (the constructor's root id): they
   * are mounted idmapped through the pinned user namespace at `nsPath`, which maps that range to
   * the sandbox's, so files stay in the image's range on disk.
   */
  idmap?: { nsPath: string; lowers: number };
}

export class Layers {
  private templates = new Map<number, Promise<string>>();

  /**
   * @param templateDir where the empty ext4 templates live (recreated per daemon)
   * @param helper the mags-guest binary (its `layer`, `overlay`, `unmount` sub-commands)
   */
  constructor(
    private readonly templateDir: string,
    private readonly helper: string,
    /** Host uid/gid of root in the sandboxes (owner of every layer's root directory). */
    private readonly rootId: number,
    /** How helper commands run (the daemon's host spawner). */
    private readonly exec: (cmd: string, args: string[]) => Promise<{ stdout: string }> = run,
  ) {}

  /** The empty ext4 image of `gb` GiB every throw-away layer of that size starts from. */
  private template(gb: number): Promise<string> {
    let p = this.templates.get(gb);
    if (!p) {
      p = (async () => {
        const path = join(this.templateDir, `ext4-${gb}g.img`);
        const tmp = `${path}.tmp-${process.pid}`;
        await mkdir(this.templateDir, { recursive: true });
        const fh = await open(tmp, 'w', 0o600);
        try {
          await fh.truncate(gb * 1024 ** 3);
        } finally {
          await fh.close();
        }
        const opts = `lazy_itable_init=1,nodiscard,root_owner=${this.rootId}:${this.rootId}`;
        await run('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', '-E', opts, '-m', '0', tmp], {
          what: 'apt-get install e2fsprogs',
        });
        await rename(tmp, path);
        return path;
      })();
      p.catch(() => this.templates.delete(gb));
      this.templates.set(gb, p);
    }
    return p;
  }

  /** Creates the sandbox's writable layer (under `sandboxDir`) and mounts its overlay root at `rootfs`. */
  async create(req: LayerRequest): Promise<LayerPaths> {
    const rootfs = req.rootfs;
    const rootId = String(req.rootId ?? this.rootId);
    await mkdir(rootfs, { recursive: true });
    const lower = [...(req.extraLowerDirs ?? []), req.imageMount].join(':');
    const idmap = req.idmap ? [req.idmap.nsPath, join(req.sandboxDir, 'idmap'), String(req.idmap.lowers)] : [];
    if (req.workspaceLayerDir) {
      const upper = req.workspaceLayerDir;
      // The overlay work dir must be on the upper's file system: a sibling, removed on destroy.
      const work = workDirOf(upper, req.sandboxId);
      await mkdir(upper, { recursive: true });
      await mkdir(work, { recursive: true });
      // An idmapped workspace layer keeps the image's ids on disk: its root is the image's root.
      await this.exec(this.helper, ['overlay', rootfs, lower, upper, work, req.idmap ? String(this.rootId) : rootId, ...idmap]);
      return { rootfs, upper, work };
    }
    const gb = Math.max(1, Math.ceil(req.diskGb));
    const template = await this.template(gb);
    const diskMount = join(req.sandboxDir, 'disk');
    await mkdir(diskMount, { recursive: true });
    const out = await this.exec(this.helper, ['layer', template, join(req.sandboxDir, 'disk.img'), diskMount, rootfs, lower, rootId, ...idmap]);
    const loopDevice = out.stdout.trim() || undefined;
    return { rootfs, upper: join(diskMount, 'upper'), work: join(diskMount, 'work'), diskMount, loopDevice };
  }

  /** Unmounts and removes what create() made (never the workspace layer itself). Idempotent. */
  async remove(sandboxDir: string, rootfs: string, sandboxId: string, workspaceLayerDir?: string): Promise<void> {
    // The helper unmounts both in one exec; the mount table is only scanned when it failed.
    const ok = await this.exec(this.helper, ['unmount', rootfs, join(sandboxDir, 'disk')]).then(
      () => true,
      () => false,
    );
    if (!ok) {
      await unmountUnder(rootfs);
      await unmountUnder(sandboxDir);
    }
    if (workspaceLayerDir) await rm(workDirOf(workspaceLayerDir, sandboxId), { recursive: true, force: true });
  }
}

/**
 * Waits until the loop device no longer holds `file`. Unmounting only starts the release: the
 * file system lives on until the sandbox's mount namespace is gone, which the kernel finishes
 * asynchronously. Returns false when it is still attached after `timeoutMs`.
 */
export async function waitLoopReleased(device: string, file: string, timeoutMs = 5000): Promise<boolean> {
  const sysfs = `/sys/block/${basename(device)}/loop/backing_file`;
  const end = Date.now() + timeoutMs;
  for (;;) {
    let backing: string;
    try {
      backing = (await readFile(sysfs, 'utf8')).trim().replace(/ \(deleted\)$/, '');
    } catch {
      return true; // no backing file: detached
    }
    if (backing !== resolve(file)) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}

function workDirOf(upper: string, sandboxId: string): string {
  return join(dirname(upper), `.${basename(upper)}.work-${sandboxId}`);
}
