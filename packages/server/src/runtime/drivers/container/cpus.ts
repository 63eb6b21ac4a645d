/**
 * Which host CPUs a sandbox may run on (its cpuset). The CPU quota (`vcpus`) bounds how much CPU time
 * a sandbox gets; the cpuset makes the count of CPUs it sees match: `nproc`, `os.availableParallelism()`,
 * Python's `os.process_cpu_count()` and the JVM read the scheduler affinity, which follows the cpuset.
 * A sandbox of `vcpus` v gets ceil(v) CPUs (all of them when v >= the host's count), the least used
 * ones at that moment, so sandboxes spread over the host instead of piling on CPU 0.
 */

/** Parses a cpuset list such as `0-3,6` into CPU numbers. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-').map(Number);
    if (!Number.isInteger(a)) continue;
    for (let c = a!; c <= (Number.isInteger(b) ? b! : a!); c++) out.push(c);
  }
  return out;
}

export class CpuPlacer {
  private readonly use = new Map<number, number>();
  private readonly held = new Map<string, number[]>();

  /** @param cpus the CPUs sandboxes may use (the parent cgroup's cpuset) */
  constructor(private readonly cpus: number[]) {
    for (const c of cpus) this.use.set(c, 0);
  }

  /** How many CPUs a sandbox of `vcpus` sees. */
  count(vcpus: number): number {
    return Math.max(1, Math.min(this.cpus.length, Math.ceil(vcpus - 1e-9)));
  }

  /** Picks CPUs for `id` (replacing what it held) and returns them as a cpuset list, e.g. `1` or `0-1`. */
  place(id: string, vcpus: number): string {
    this.release(id);
    const n = this.count(vcpus);
    const picked = [...this.cpus].sort((a, b) => this.use.get(a)! - this.use.get(b)! || a - b).slice(0, n).sort((a, b) => a - b);
    for (const c of picked) this.use.set(c, this.use.get(c)! + 1);
    this.held.set(id, picked);
    return formatCpuList(picked);
  }

  /** Forgets the CPUs `id` held. */
  release(id: string): void {
    for (const c of this.held.get(id) ?? []) this.use.set(c, Math.max(0, this.use.get(c)! - 1));
    this.held.delete(id);
  }
}

/** Formats CPU numbers as a cpuset list (`0-2,5`). */
export function formatCpuList(cpus: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    parts.push(j === i ? String(cpus[i]) : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
