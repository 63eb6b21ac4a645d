/**
 * Admission control: a job's `memory_mb`, `vcpus` and `disk_gb` against what this host can give
 * (refused at submission with a code naming the limit), and the sum over running jobs against the
 * host times the overcommit ratios (checked by the scheduler: a job that does not fit waits).
 */
import { AppError } from './errors.js';

/** What the host offers sandboxes, measured at start (memory, CPUs) or on demand (free disk). */
export interface HostCapacity {
  /** Memory of the sandboxes' parent cgroup (host memory less the reserve), MiB. */
  memoryMb: number;
  /** CPUs of the host. */
  vcpus: number;
  /** Free space of the data directory (where sandbox disks live), GB. */
  freeDiskGb(): number;
}

export interface OvercommitRatios {
  memory: number;
  cpu: number;
  disk: number;
}

/** The resources one job asks for. */
export interface JobResources {
  memory_mb: number;
  vcpus: number;
  disk_gb: number;
}

export class Admission {
  constructor(
    private readonly host: HostCapacity,
    private readonly ratios: OvercommitRatios,
  ) {}

  /** Throws MEMORY_EXCEEDS_HOST, VCPUS_EXCEED_HOST or DISK_EXCEEDS_HOST when one job alone cannot fit. */
  checkJob(r: JobResources): void {
    if (r.memory_mb > this.host.memoryMb) {
      throw new AppError(
        'MEMORY_EXCEEDS_HOST',
        `memory_mb: ${r.memory_mb} is more than this host can give one sandbox (${this.host.memoryMb} MiB)`,
        `Ask for at most ${this.host.memoryMb} MiB.`,
      );
    }
    if (r.vcpus > this.host.vcpus) {
      throw new AppError('VCPUS_EXCEED_HOST', `vcpus: ${r.vcpus} is more than this host has CPUs (${this.host.vcpus})`, `Ask for at most ${this.host.vcpus} vcpus.`);
    }
    this.checkDisk(r.disk_gb);
  }

  /** Throws DISK_EXCEEDS_HOST when `diskGb` is more than the data directory's free space. */
  checkDisk(diskGb: number): void {
    const free = Math.floor(this.host.freeDiskGb());
    if (diskGb > free) {
      throw new AppError('DISK_EXCEEDS_HOST', `disk_gb: ${diskGb} is more than the free disk space of this host (${free} GB)`, `Ask for at most ${free} GB.`);
    }
  }

  /** Whether `next` may start beside the running jobs whose resources add up to `running`. */
  fits(running: JobResources, next: JobResources): boolean {
    return this.shortfall(running, next) === null;
  }

  /** What `next` lacks beside the running jobs whose resources add up to `running` (null: it fits). */
  shortfall(running: JobResources, next: JobResources): string | null {
    // A job alone always fits (checkJob let it in; the host may have shrunk since, and waiting would not help).
    if (running.memory_mb === 0 && running.vcpus === 0 && running.disk_gb === 0) return null;
    const memory = this.host.memoryMb * this.ratios.memory;
    if (running.memory_mb + next.memory_mb > memory) return `memory: ${running.memory_mb} of ${Math.floor(memory)} MiB are in use and the sandbox needs ${next.memory_mb}`;
    const cpus = this.host.vcpus * this.ratios.cpu;
    if (running.vcpus + next.vcpus > cpus) return `vcpus: ${running.vcpus} of ${cpus} are in use and the sandbox needs ${next.vcpus}`;
    const disk = this.host.freeDiskGb() * this.ratios.disk;
    if (running.disk_gb + next.disk_gb > disk) return `disk: ${running.disk_gb} of ${Math.floor(disk)} GB are in use and the sandbox needs ${next.disk_gb}`;
    return null;
  }
}
