/**
 * The cgroup layer: finds the host's hierarchies (v2, v1, or hybrid = v1 controllers plus a cgroup2
 * mount), applies the hybrid fix crun needs, and reads/writes the files of a sandbox's cgroup.
 * crun creates and removes the cgroups themselves (from `linux.cgroupsPath`); this layer updates
 * limits of running sandboxes, reads OOM kills and memory use, and sweeps what a crash left.
 * Every sandbox cgroup is `/<instance>/<sandbox id>` inside each hierarchy.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { run } from '../../../host/exec.js';

export type CgroupMode = 'v2' | 'v1' | 'hybrid';

export interface CgroupLimits {
  vcpus?: number;
  /** cpuset list (`0-1`) the sandbox's processes may run on. */
  cpus?: string;
  memoryMb?: number;
  pids?: number;
}

const CPU_PERIOD_US = 100_000;

export interface Hierarchy {
  mountPoint: string;
  /** Controllers of a v1 hierarchy (e.g. ['cpu', 'cpuacct'] or ['name=systemd']); empty for v2. */
  controllers: string[];
  v2: boolean;
}

const V1_CONTROLLERS = new Set([
  'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'net_prio', 'blkio', 'perf_event',
  'hugetlb', 'pids', 'rdma', 'misc',
]);

/** The cgroup hierarchies in a /proc/self/mountinfo text. */
export function parseCgroupMounts(mountinfo: string): Hierarchy[] {
  const out: Hierarchy[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const [fstype, , superOpts] = line.slice(sep + 3).split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const mountPoint = left[4]!;
    const controllers =
      fstype === 'cgroup'
        ? (superOpts ?? '').split(',').filter((o) => V1_CONTROLLERS.has(o) || o.startsWith('name='))
        : [];
    out.push({ mountPoint, controllers, v2: fstype === 'cgroup2' });
  }
  return out;
}

/** v2 when no v1 hierarchy holds a real controller; hybrid when v1 controllers sit beside a cgroup2 mount. */
export function cgroupMode(hierarchies: Hierarchy[]): CgroupMode {
  const v1 = hierarchies.some((h) => !h.v2 && h.controllers.some((c) => !c.startsWith('name=')));
  return v1 ? (hierarchies.some((h) => h.v2) ? 'hybrid' : 'v1') : 'v2';
}

async function readHierarchies(): Promise<Hierarchy[]> {
  return parseCgroupMounts(await readFile('/proc/self/mountinfo', 'utf8'));
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

/** CPU weight of background host work, against 100 for the daemon and other host processes. */
export const MAINTENANCE_CPU_WEIGHT = 6;

/** cgroup v1 `cpu.shares` (default 1024) of a v2 `cpu.weight` (default 100). */
export function sharesOfWeight(weight: number): number {
  return Math.round((weight * 1024) / 100);
}

export class Cgroups {
  mode: CgroupMode = 'v2';
  private hierarchies: Hierarchy[] = [];
  private byController = new Map<string, string>();
  private unified: string | null = null;

  constructor(
    private readonly instance: string,
    private readonly log: Logger,
  ) {}

  /** Detects the layout; on hybrid hosts frees the cgroup2 hierarchy of controllers (crun refuses it otherwise). */
  async init(): Promise<void> {
    await this.detect();
    if (this.mode === 'hybrid' && this.unified) {
      const held = ((await readText(join(this.unified, 'cgroup.controllers'))) ?? '').trim().split(/\s+/).filter(Boolean);
      for (const ctrl of held) {
        if (this.byController.has(ctrl)) continue;
        // A controller nobody enabled in cgroup2 can be mounted as a v1 hierarchy, which frees it.
        const mp = `/sys/fs/cgroup/${ctrl}`;
        this.log.info({ controller: ctrl, mountPoint: mp }, 'hybrid cgroups: mounting the controller as a v1 hierarchy so crun accepts the layout');
        await mkdir(mp, { recursive: true }).catch(() => {});
        await run('mount', ['-t', 'cgroup', '-o', ctrl, 'cgroup', mp]);
      }
      await this.detect();
    }
  }

  private async detect(): Promise<void> {
    this.hierarchies = await readHierarchies();
    this.byController.clear();
    this.unified = null;
    for (const h of this.hierarchies) {
      if (h.v2) this.unified = h.mountPoint;
      for (const c of h.controllers) this.byController.set(c, h.mountPoint);
    }
    this.mode = cgroupMode(this.hierarchies);
  }

  /** Problems a person must fix before sandboxes can get limits. */
  problems(): string[] {
    if (this.mode === 'v2') {
      const root = this.unified;
      if (!root) return ['no cgroup file system mounted: mount -t cgroup2 none /sys/fs/cgroup'];
      return [];
    }
    const missing = ['memory', 'cpu', 'pids'].filter((c) => !this.byController.has(c));
    return missing.map((c) => `cgroup v1 controller ${c} is not mounted: mount -t cgroup -o ${c} cgroup /sys/fs/cgroup/${c}`);
  }

  /**
   * Creates the instance's parent cgroup (`/<instance>`, where crun puts every sandbox) and limits
   * its memory and processes and weighs its CPU: the sum over all sandboxes can never take the
   * host's reserve.
   */
  async setParentLimits(l: { memoryBytes: number; cpuWeight: number; pids: number }): Promise<void> {
    if (this.mode === 'v2') {
      const root = this.unified!;
      const parent = join(root, this.instance);
      await mkdir(parent, { recursive: true });
      // Children get a controller only when every ancestor delegates it.
      for (const dir of [root, parent]) {
        const enabled = (readTextSync(join(dir, 'cgroup.subtree_control')) ?? '').split(/\s+/);
        const available = (readTextSync(join(dir, 'cgroup.controllers')) ?? '').split(/\s+/);
        const wanted = ['memory', 'pids', 'cpu', ...(available.includes('cpuset') ? ['cpuset'] : [])];
        const missing = wanted.filter((c) => !enabled.includes(c));
        if (missing.length) writeFileSync(join(dir, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
      }
      writeFileSync(join(parent, 'memory.max'), String(l.memoryBytes));
      writeFileSync(join(parent, 'pids.max'), String(l.pids));
      writeFileSync(join(parent, 'cpu.weight'), String(l.cpuWeight));
      return;
    }
    const files: Array<[string, string, string]> = [
      ['memory', 'memory.limit_in_bytes', String(l.memoryBytes)],
      ['pids', 'pids.max', String(l.pids)],
      ['cpu', 'cpu.shares', String(sharesOfWeight(l.cpuWeight))],
    ];
    for (const [ctrl, file, value] of files) {
      const mp = this.byController.get(ctrl);
      if (!mp) throw new Error(`cgroup v1 controller ${ctrl} is not mounted: mount -t cgroup -o ${ctrl} cgroup /sys/fs/cgroup/${ctrl}`);
      await mkdir(join(mp, this.instance), { recursive: true });
      writeFileSync(join(mp, this.instance, file), value);
    }
  }

  /** The cgroup of background host work (`/<instance>.maint`, CPU controller only). */
  private maintenanceDir(): string | null {
    const mp = this.mode === 'v2' ? this.unified : (this.byController.get('cpu') ?? null);
    return mp ? join(mp, `${this.instance}.maint`) : null;
  }

  /**
   * Creates the cgroup of background host work (pool refill, teardown) with a low CPU weight
   * (MAINTENANCE_CPU_WEIGHT of the default 100): with the CPU contended, a job starting meanwhile
   * runs first; on an idle host it changes nothing. Sandboxes never run in it: crun moves each into
   * its own cgroup. Answers its `cgroup.procs` file, or null when it cannot be made (then that work
   * runs at normal weight).
   */
  async makeMaintenance(): Promise<string | null> {
    const dir = this.maintenanceDir();
    if (!dir) return null;
    try {
      await mkdir(dir, { recursive: true });
      if (this.mode === 'v2') writeFileSync(join(dir, 'cpu.weight'), String(MAINTENANCE_CPU_WEIGHT));
      else writeFileSync(join(dir, 'cpu.shares'), String(sharesOfWeight(MAINTENANCE_CPU_WEIGHT)));
      return join(dir, 'cgroup.procs');
    } catch (err) {
      this.log.warn({ err, cgroup: dir }, 'could not create the cgroup of background host work; it runs at normal CPU weight');
      return null;
    }
  }

  /** Removes the background work cgroup once its processes are gone (waits up to a second for them). */
  async removeMaintenance(): Promise<void> {
    const dir = this.maintenanceDir();
    if (!dir || !existsSync(dir)) return;
    for (let i = 0; ; i++) {
      try {
        await rmdir(dir);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        if (i >= 20) {
          this.log.warn({ err, cgroup: dir }, 'could not remove the cgroup of background host work');
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /**
   * The CPUs sandboxes may be placed on (the root cpuset), or null when the cpuset controller is not
   * available to sandboxes (then they see every host CPU).
   */
  sandboxCpus(): string | null {
    if (this.mode === 'v2') {
      const root = this.unified!;
      const enabled = (readTextSync(join(root, this.instance, 'cgroup.subtree_control')) ?? '').split(/\s+/);
      if (!enabled.includes('cpuset')) return null;
      return readTextSync(join(root, 'cpuset.cpus.effective'))?.trim() || null;
    }
    const mp = this.byController.get('cpuset');
    return mp ? readTextSync(join(mp, 'cpuset.cpus'))?.trim() || null : null;
  }

  /** The OCI `linux.cgroupsPath` of a sandbox. */
  path(id: string): string {
    return `/${this.instance}/${id}`;
  }

  private v1(ctrl: string, id: string, file: string): string | null {
    const mp = this.byController.get(ctrl);
    return mp ? join(mp, this.instance, id, file) : null;
  }

  private v2(id: string, file: string): string {
    return join(this.unified!, this.instance, id, file);
  }

  /**
   * How many times the kernel OOM-killed a process of the sandbox. cgroup files are read and
   * written synchronously: they are in-memory and answer in microseconds, while the thread pool
   * may be queued behind slow disk work.
   */
  async oomKills(id: string): Promise<number> {
    const file = this.mode === 'v2' ? this.v2(id, 'memory.events') : this.v1('memory', id, 'memory.oom_control');
    const text = file ? readTextSync(file) : null;
    const m = text ? /^oom_kill (\d+)/m.exec(text) : null;
    if (m) return Number(m[1]);
    // Old v1 kernels lack the counter; hitting the limit is the best evidence there is.
    const fail = this.mode !== 'v2' ? readTextSync(this.v1('memory', id, 'memory.failcnt') ?? '') : null;
    return fail ? Number(fail.trim()) : 0;
  }

  /** Memory charged to the sandbox, in bytes. */
  async memoryBytes(id: string): Promise<number> {
    return this.memoryBytesSync(id);
  }

  /** Memory charged to the sandbox, in bytes (a synchronous read of an in-memory file). */
  memoryBytesSync(id: string): number {
    const file = this.mode === 'v2' ? this.v2(id, 'memory.current') : this.v1('memory', id, 'memory.usage_in_bytes');
    const text = file ? readTextSync(file) : null;
    return text ? Number(text.trim()) : 0;
  }

  /** CPU time of the sandbox's processes in microseconds (v2 `cpu.stat` usage_usec, v1 `cpuacct.usage` in ns). */
  async cpuUsageMicros(id: string): Promise<number> {
    if (this.mode === 'v2') {
      const m = /^usage_usec (\d+)$/m.exec(readTextSync(this.v2(id, 'cpu.stat')) ?? '');
      if (!m) throw new Error(`no cpu.stat for sandbox ${id}`);
      return Number(m[1]);
    }
    const file = this.v1('cpuacct', id, 'cpuacct.usage');
    const text = file ? readTextSync(file) : null;
    if (text === null) throw new Error(`no cpuacct.usage for sandbox ${id}`);
    return Math.floor(Number(text.trim()) / 1000);
  }

  /** Highest memory charged to the sandbox, in bytes (v2 kernels before 5.19 lack memory.peak: the current value). */
  memoryPeakBytes(id: string): number {
    const file = this.mode === 'v2' ? this.v2(id, 'memory.peak') : this.v1('memory', id, 'memory.max_usage_in_bytes');
    const text = file ? readTextSync(file) : null;
    if (text) return Number(text.trim());
    return this.memoryBytesSync(id);
  }

  /** Changes limits of a running sandbox by writing its cgroup files directly (no crun round trip). */
  async update(id: string, limits: CgroupLimits): Promise<void> {
    if (this.mode === 'v2') {
      if (limits.memoryMb !== undefined) {
        writeFileSync(this.v2(id, 'memory.max'), String(limits.memoryMb * 1024 * 1024));
        if (existsSync(this.v2(id, 'memory.swap.max'))) writeFileSync(this.v2(id, 'memory.swap.max'), '0');
      }
      if (limits.vcpus !== undefined) writeFileSync(this.v2(id, 'cpu.max'), `${Math.round(limits.vcpus * CPU_PERIOD_US)} ${CPU_PERIOD_US}`);
      if (limits.pids !== undefined) writeFileSync(this.v2(id, 'pids.max'), String(limits.pids));
      if (limits.cpus !== undefined) writeFileSync(this.v2(id, 'cpuset.cpus'), limits.cpus);
      return;
    }
    if (limits.memoryMb !== undefined) {
      const bytes = String(limits.memoryMb * 1024 * 1024);
      const mem = this.v1('memory', id, 'memory.limit_in_bytes')!;
      const memsw = this.v1('memory', id, 'memory.memsw.limit_in_bytes')!;
      if (existsSync(memsw)) {
        // memory+swap may never be below memory: raise memsw first when growing, lower memory first when shrinking.
        const current = Number((readTextSync(mem) ?? '0').trim());
        if (limits.memoryMb * 1024 * 1024 >= current) {
          writeFileSync(memsw, bytes);
          writeFileSync(mem, bytes);
        } else {
          writeFileSync(mem, bytes);
          writeFileSync(memsw, bytes);
        }
      } else {
        writeFileSync(mem, bytes);
      }
    }
    if (limits.vcpus !== undefined) writeFileSync(this.v1('cpu', id, 'cpu.cfs_quota_us')!, String(Math.round(limits.vcpus * CPU_PERIOD_US)));
    if (limits.pids !== undefined) writeFileSync(this.v1('pids', id, 'pids.max')!, String(limits.pids));
    const cpuset = limits.cpus !== undefined ? this.v1('cpuset', id, 'cpuset.cpus') : null;
    if (cpuset) writeFileSync(cpuset, limits.cpus!);
  }

  /** Freezes or thaws every process of the sandbox and waits until the kernel reports it done. */
  async freeze(id: string, frozen: boolean): Promise<void> {
    const v2 = this.mode === 'v2';
    const file = v2 ? this.v2(id, 'cgroup.freeze') : this.v1('freezer', id, 'freezer.state');
    if (!file) throw new Error('the freezer cgroup controller is not mounted: mount -t cgroup -o freezer cgroup /sys/fs/cgroup/freezer');
    writeFileSync(file, v2 ? (frozen ? '1' : '0') : frozen ? 'FROZEN' : 'THAWED');
    const done = () => {
      const text = readTextSync(v2 ? this.v2(id, 'cgroup.events') : file) ?? '';
      return v2 ? /^frozen 1$/m.test(text) === frozen : text.trim() === (frozen ? 'FROZEN' : 'THAWED');
    };
    for (let i = 0; !done(); i++) {
      if (i > 2000) {
        // A freeze that does not finish is undone: a half-frozen sandbox that its owner believes
        // running could never be thawed or killed (frozen tasks do not die).
        if (frozen) writeFileSync(file, v2 ? '0' : 'THAWED');
        throw new Error(`sandbox ${id} did not ${frozen ? 'freeze' : 'thaw'} within 2 s`);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** Whether the memory+swap limit exists (v1 without swap accounting lacks it). */
  hasSwapLimit(): boolean {
    if (this.mode === 'v2') {
      // The root cgroup has no limit files: look at a child that has memory.max.
      const root = this.unified!;
      let children: string[] = [];
      try {
        children = readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
      } catch {
        return true;
      }
      const probe = children.find((c) => existsSync(join(root, c, 'memory.max')));
      return probe === undefined || existsSync(join(root, probe, 'memory.swap.max'));
    }
    const mp = this.byController.get('memory');
    return mp ? existsSync(join(mp, 'memory.memsw.limit_in_bytes')) : false;
  }

  /** Every directory of `id` (or of the whole instance when id is absent) in every hierarchy. */
  private dirs(id?: string): string[] {
    return this.hierarchies.map((h) => (id ? join(h.mountPoint, this.instance, id) : join(h.mountPoint, this.instance)));
  }

  /** Removes the sandbox's cgroups (after its processes are gone); kills stragglers first. */
  async remove(id: string): Promise<void> {
    for (const dir of this.dirs(id)) await removeCgroup(dir);
  }

  /** Thaws every frozen sandbox of this instance (the sweep runs this before killing anything). */
  async thawAll(): Promise<void> {
    for (const parent of this.dirs()) {
      for (const ent of await readdir(parent, { withFileTypes: true }).catch(() => [])) {
        if (ent.isDirectory()) thaw(join(parent, ent.name));
      }
    }
  }

  /** Removes every cgroup of this instance (what a crashed daemon left), killing what still runs in them. */
  async sweep(): Promise<number> {
    let removed = 0;
    for (const parent of this.dirs()) {
      if (!existsSync(parent)) continue;
      for (const ent of await readdir(parent, { withFileTypes: true })) {
        if (ent.isDirectory()) {
          await removeCgroup(join(parent, ent.name));
          removed++;
        }
      }
    }
    return removed;
  }

  /** Removes the instance's parent cgroups once no sandbox is left. */
  async removeParents(): Promise<void> {
    for (const parent of this.dirs()) await rmdir(parent).catch(() => {});
  }

  /** Sandbox ids with a cgroup of this instance (for tests and the leak check). */
  async listIds(): Promise<string[]> {
    const ids = new Set<string>();
    for (const parent of this.dirs()) {
      for (const ent of await readdir(parent, { withFileTypes: true }).catch(() => [])) if (ent.isDirectory()) ids.add(ent.name);
    }
    return [...ids];
  }
}

function readTextSync(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Best effort: a frozen cgroup's processes cannot be killed. */
function thaw(dir: string): void {
  for (const [file, value] of [['freezer.state', 'THAWED'], ['cgroup.freeze', '0']] as const) {
    try {
      if (existsSync(join(dir, file))) writeFileSync(join(dir, file), value);
    } catch {
      /* not frozen or not freezable */
    }
  }
}

async function removeCgroup(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  thaw(dir);
  for (const ent of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (ent.isDirectory()) await removeCgroup(join(dir, ent.name));
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw err;
      const procs = ((await readText(join(dir, 'cgroup.procs'))) ?? '').split('\n').filter(Boolean);
      for (const pid of procs) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      await new Promise((r) => setTimeout(r, 10 + attempt * 5));
    }
  }
  throw new Error(`cannot remove cgroup ${dir}: processes keep running in it`);
}
