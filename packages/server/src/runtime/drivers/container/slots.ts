/**
 * Host uid ranges of sandboxes ("slots"). Slot k maps root..65535 inside to host ids
 * `idBase + k * 65536 ..`, so per-uid kernel budgets (epoll watches, pipe buffers, inotify and mqueue
 * ucounts) are a sandbox's own. Each slot has:
 * - a user namespace created by a process of the slot's base uid (so the kernel charges the
 *   namespace's ucounts to that uid, not to host root), with `/proc/sys/user` limits of its own, pinned
 *   by a bind mount that crun joins (`linux.namespaces[].path`);
 * - an idmapped mount of the read-only base image, where the image's files (owned on disk by
 *   `idBase..`) appear with the slot's ids: the image stays one shared erofs, the overlay takes this
 *   mount as its lower layer.
 * - a second pinned user namespace mapping `idBase..` to the slot's ids: the idmapping of that image
 *   mount, and of the host directories a sandbox's overlay takes as layers (workspace layers, an
 *   older image), so those files keep the image's ids on disk whichever slot runs them.
 * All are made once per slot (~17 ms, one helper exec) and kept for the next sandbox of that slot, so
 * the warm start costs nothing more. A slot is exclusive to one sandbox at a time.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Ids in one slot (a full 16-bit range: what Debian's tools expect inside). */
export const SLOT_IDS = 65536;
/** Highest slot: idBase + 16000 x 65536 stays below 2^31 for an idBase of 10^9. */
export const MAX_SLOTS = 16000;

/** `/proc/sys/user` limits set inside every slot's user namespace. */
export function slotUserLimits(): string {
  // crun creates the sandbox's pid, ipc, uts, mount, cgroup (and, without networking, net) namespaces
  // inside the slot's user namespace.
  const ns = 16;
  return [
    'max_user_namespaces=0',
    'max_time_namespaces=0',
    ...['cgroup', 'ipc', 'mnt', 'net', 'pid', 'uts'].map((n) => `max_${n}_namespaces=${ns}`),
    'max_inotify_instances=128',
    'max_inotify_watches=65536',
    'max_fanotify_groups=0',
  ].join(',');
}

export interface Slot {
  index: number;
  /** Host uid/gid of root in the sandbox. */
  base: number;
  /** Pinned user namespace for crun to join. */
  nsPath: string;
  /** Pinned user namespace mapping the image's ids to the slot's (for idmapped layers). */
  idmapPath: string;
  /** The base image seen with the slot's ids. */
  imageMount: string;
}

export interface SlotsOptions {
  idBase: number;
  /** Where the user namespaces are pinned (crun opens them as host root). */
  nsDir: string;
  /** Where the idmapped image mounts live. */
  imageDir: string;
  /** The mounted base image (owned by idBase..). */
  image: string;
  /** Runs the mags-guest helper with these arguments. */
  helper: (args: string[]) => Promise<unknown>;
}

export class UidSlots {
  private readonly made = new Map<number, Promise<Slot>>();
  private readonly busy = new Set<number>();

  constructor(private readonly opts: SlotsOptions) {}

  private make(index: number): Promise<Slot> {
    let p = this.made.get(index);
    if (!p) {
      p = (async () => {
        const base = this.opts.idBase + index * SLOT_IDS;
        await mkdir(this.opts.nsDir, { recursive: true, mode: 0o700 });
        const nsPath = join(this.opts.nsDir, `${index}.userns`);
        const idmapPath = join(this.opts.nsDir, `${index}.idmap`);
        const imageMount = join(this.opts.imageDir, String(index));
        await mkdir(imageMount, { recursive: true });
        await this.opts.helper(['slot', nsPath, String(base), String(SLOT_IDS), slotUserLimits(), this.opts.image, imageMount, String(this.opts.idBase), idmapPath]);
        return { index, base, nsPath, idmapPath, imageMount };
      })();
      p.catch(() => this.made.delete(index));
      this.made.set(index, p);
    }
    return p;
  }

  /** A slot no other sandbox holds; release() gives it back. */
  async acquire(): Promise<Slot> {
    let index = 1;
    while (this.busy.has(index)) index++;
    if (index > MAX_SLOTS) throw new Error(`all ${MAX_SLOTS} sandbox uid ranges are in use`);
    this.busy.add(index);
    try {
      return await this.make(index);
    } catch (err) {
      this.busy.delete(index);
      throw err;
    }
  }

  release(slot: Slot): void {
    this.busy.delete(slot.index);
  }

  /** Paths to unmount at shutdown (namespace pins and idmapped images). */
  async mountPoints(): Promise<string[]> {
    const all = await Promise.allSettled([...this.made.values()]);
    this.made.clear();
    return all.flatMap((r) => (r.status === 'fulfilled' ? [r.value.nsPath, r.value.idmapPath, r.value.imageMount] : []));
  }
}
