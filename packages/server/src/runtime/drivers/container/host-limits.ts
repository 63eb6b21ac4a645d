/**
 * Host-wide limits of the container driver: the parent cgroup of all sandboxes leaves a reserve of
 * processes, memory and CPU to the host and the daemon, and at start the product of per-sandbox
 * limits and concurrent sandboxes is compared with the kernel's global tables (fs.file-max,
 * kernel.pid_max). docs/security.md states the same formulas.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';

/** What the host offers, read from /proc. */
export interface HostFacts {
  memTotalBytes: number;
  cpus: number;
  pidMax: number;
  fileMax: number;
}

/** Limits of the parent cgroup `/<instance>` that every sandbox cgroup sits in. */
export interface ParentLimits {
  memoryBytes: number;
  /**
   * CPU weight of all sandboxes together (cgroup v2 scale, default 100; v1 cpu.shares = weight x 10.24).
   * A weight, not a quota: idle CPUs stay usable, and under contention the host's cgroups win.
   */
  cpuWeight: number;
  pids: number;
}

/**
 * Sandboxes together weigh as much as one default cgroup: under full load the host's own cgroups
 * (system.slice, user.slice; on cgroup v1 every process of the root cgroup counts on its own) get at
 * least half of the CPU they ask for, and idle CPU is never withheld from sandboxes.
 */
export const PARENT_CPU_WEIGHT = 100;

/** Whether per-sandbox limits x concurrent sandboxes fit the kernel's global tables. */
export interface FitReport {
  maxSandboxes: number;
  /** Worst case of processes: maxSandboxes x pids per sandbox, against the parent's pids.max. */
  pidsNeeded: number;
  pidsAvailable: number;
  /** Worst case of open files: min(pidsNeeded, parent pids.max) x RLIMIT_NOFILE, against fs.file-max minus the reserve. */
  filesNeeded: number;
  filesAvailable: number;
  pidsFit: boolean;
  filesFit: boolean;
}

const GiB = 1024 ** 3;

/** The host's reserve: max(1 GiB, 10%) of memory, max(1024, 1/8) of pid_max; CPU by weight. */
export function parentLimits(h: HostFacts): ParentLimits {
  const memReserve = Math.max(GiB, Math.floor(h.memTotalBytes / 10));
  const pidReserve = Math.max(1024, Math.floor(h.pidMax / 8));
  return {
    memoryBytes: Math.max(256 * 1024 * 1024, h.memTotalBytes - memReserve),
    cpuWeight: PARENT_CPU_WEIGHT,
    pids: Math.max(1024, h.pidMax - pidReserve),
  };
}

/** Files kept for the host: max(65536, 1/8 of fs.file-max). */
export function fileReserve(fileMax: number): number {
  return Math.max(65536, Math.floor(fileMax / 8));
}

export function fitReport(h: HostFacts, parent: ParentLimits, per: { maxSandboxes: number; pids: number; nofile: number }): FitReport {
  const pidsNeeded = per.maxSandboxes * per.pids;
  const filesNeeded = Math.min(pidsNeeded, parent.pids) * per.nofile;
  const filesAvailable = Math.max(0, h.fileMax - fileReserve(h.fileMax));
  return {
    maxSandboxes: per.maxSandboxes,
    pidsNeeded,
    pidsAvailable: parent.pids,
    filesNeeded,
    filesAvailable,
    pidsFit: pidsNeeded <= parent.pids,
    filesFit: filesNeeded <= filesAvailable,
  };
}

async function readNumber(path: string): Promise<number> {
  const n = Number((await readFile(path, 'utf8')).trim());
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${path} does not hold a positive number`);
  return n;
}

/** Reads the host's totals from /proc. */
export async function readHostFacts(): Promise<HostFacts> {
  const meminfo = await readFile('/proc/meminfo', 'utf8');
  const m = /^MemTotal:\s+(\d+) kB/m.exec(meminfo);
  if (!m) throw new Error('/proc/meminfo has no MemTotal line');
  return {
    memTotalBytes: Number(m[1]) * 1024,
    cpus: availableParallelism(),
    pidMax: await readNumber('/proc/sys/kernel/pid_max'),
    fileMax: await readNumber('/proc/sys/fs/file-max'),
  };
}
