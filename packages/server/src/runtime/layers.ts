/**
 * The writable layer of a sandbox and its root file system.
 *
 * Disk limit: this host's kernel has no quota support (neither ext4 nor XFS project quotas), so a
 * throw-away layer lives on its own file system: a sparse ext4 image of `diskGb` GiB (no journal;
 * it never outlives the sandbox) loop-mounted under the sandbox directory. Writes past the size fail
 * with ENOSPC inside the sandbox only; the host file only grows with what is really written
 * (`discard` gives space back on delete); page cache is charged to the sandbox like any file I/O,
 * unlike a tmpfs whose contents would count against the memory limit. Setup costs ~10 ms, hidden by
 * the warm pool. A workspace layer is a host directory the workspace code owns and syncs, so it is
 * used as the overlay upper directly and its size is not limited here.
 *
 * Root: overlayfs with lower = extra layers + the read-only erofs image, upper = the layer.
 */
import { open, mkdir, rm } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { run } from './exec.js';
import { unmountUnder } from './mounts.js';

export interface LayerPaths {
  /** Overlay mount point: the sandbox's root. */
  rootfs: string;
  upper: string;
  work: string;
  /** Mount point of the sized file system (throw-away layers only). */
  diskMount?: string;
  diskImage?: string;
}

/** Creates the sandbox's writable layer and mounts its overlay root under `sandboxDir`. */
export async function createLayers(opts: {
  sandboxDir: string;
  sandboxId: string;
  imageMount: string;
  extraLowerDirs?: string[];
  workspaceLayerDir?: string;
  diskGb: number;
}): Promise<LayerPaths> {
  const rootfs = join(opts.sandboxDir, 'rootfs');
  await mkdir(rootfs, { recursive: true });
  let paths: LayerPaths;
  if (opts.workspaceLayerDir) {
    const upper = opts.workspaceLayerDir;
    // The overlay work dir must be on the upper's file system: a sibling, removed on destroy.
    const work = join(dirname(upper), `.${basename(upper)}.work-${opts.sandboxId}`);
    await mkdir(upper, { recursive: true });
    await mkdir(work, { recursive: true });
    paths = { rootfs, upper, work };
  } else {
    const diskImage = join(opts.sandboxDir, 'disk.img');
    const diskMount = join(opts.sandboxDir, 'disk');
    const fh = await open(diskImage, 'w', 0o600);
    try {
      await fh.truncate(Math.max(1, opts.diskGb) * 1024 ** 3);
    } finally {
      await fh.close();
    }
    await mkdir(diskMount);
    await run('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', '-E', 'lazy_itable_init=1,nodiscard', '-m', '0', diskImage], {
      what: 'apt-get install e2fsprogs',
    });
    await run('mount', ['-t', 'ext4', '-o', 'loop,discard,noatime', diskImage, diskMount]);
    const upper = join(diskMount, 'upper');
    const work = join(diskMount, 'work');
    await mkdir(upper);
    await mkdir(work);
    paths = { rootfs, upper, work, diskMount, diskImage };
  }
  const lower = [...(opts.extraLowerDirs ?? []), opts.imageMount].join(':');
  const options = [`lowerdir=${lower}`, `upperdir=${paths.upper}`, `workdir=${paths.work}`, 'index=off', 'xino=off'];
  if (!opts.workspaceLayerDir) options.push('volatile');
  await run('mount', ['-t', 'overlay', 'overlay', '-o', options.join(','), rootfs], { what: 'the kernel needs overlayfs' });
  return paths;
}

/** Unmounts and removes what createLayers made (never the workspace layer itself). Idempotent. */
export async function removeLayers(sandboxDir: string, sandboxId: string, workspaceLayerDir?: string): Promise<void> {
  await unmountUnder(sandboxDir);
  if (workspaceLayerDir) {
    const work = join(dirname(workspaceLayerDir), `.${basename(workspaceLayerDir)}.work-${sandboxId}`);
    await rm(work, { recursive: true, force: true });
  }
}
