/**
 * Keeps the LXCFS view of every live sandbox pointing at the lxcfs process that runs now. A sandbox's
 * /proc/meminfo and friends are bind mounts of files of one lxcfs process; when that process dies the
 * mounts answer ENOTCONN for as long as the sandbox lives. After each (re)start of lxcfs the driver
 * calls repairAll(): for every tracked sandbox whose files come from an older process (or that
 * started without the view, while lxcfs was down), one `mags-guest procview` exec clones the new
 * files in the host mount namespace, joins the sandbox's mount namespace through its PID 1 and
 * replaces the stale mounts (native/host-helpers.c). Frozen sandboxes are repaired too: nothing
 * inside the sandbox has to run. A failure is logged for that sandbox and the others go ahead; a
 * pass that left failures runs again after `retryMs` until none is left (or lxcfs restarts again).
 */
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { LxcfsView } from './lxcfs.js';

/** What one sandbox's view was mounted from. */
interface Tracked {
  /** Host pid of the sandbox's PID 1 (the guest agent): its namespaces are the sandbox's. */
  agentPid: number;
  /** lxcfs generation its files come from; 0 = started without the view. */
  generation: number;
}

/** The outcome of one repair pass. */
export interface ProcViewRepairReport {
  generation: number;
  repaired: string[];
  failed: Array<{ id: string; error: string }>;
  /** How long the pass took. */
  durationMs: number;
}

export interface ProcViewOptions {
  /** The supervised lxcfs: whether it runs, which process (generation) and its files. */
  view: Pick<LxcfsView, 'active' | 'generation' | 'files'>;
  /** Runs `mags-guest ARGS...` as host root; rejects with its stderr when it fails. */
  helper: (args: string[]) => Promise<unknown>;
  log: Logger;
  /** Helpers run at once (default 4). */
  parallel?: number;
  /** Whether `pid` is still PID 1 of sandbox `id` (default: its /proc/<pid>/cgroup is the sandbox's). */
  isSandboxInit?: (pid: number, id: string) => Promise<boolean>;
  /** Delay before a pass that left failures runs again (default 30 s). */
  retryMs?: number;
}

/** Default delay before failed repairs are tried again. */
export const PROC_VIEW_RETRY_MS = 30_000;

/** True when host process `pid` sits in the cgroup of sandbox `id` (a pid is reused once its process is gone). */
async function inSandboxCgroup(pid: number, id: string): Promise<boolean> {
  const cgroup = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
  return cgroup.split('\n').some((l) => l.endsWith(`/${id}`) || l.includes(`/${id}/`));
}

export class ProcViewRepair {
  private readonly tracked = new Map<string, Tracked>();
  private running: Promise<ProcViewRepairReport> | null = null;
  private again = false;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;
  /** The last pass's outcome (tests and logs). */
  lastReport: ProcViewRepairReport | null = null;

  constructor(private readonly opts: ProcViewOptions) {}

  /**
   * Registers a started sandbox whose files come from lxcfs `generation` (0: none). When that is not
   * the live generation (lxcfs restarted while it was created), its view is repaired before this resolves.
   */
  async track(id: string, agentPid: number, generation: number): Promise<void> {
    this.tracked.set(id, { agentPid, generation });
    const view = this.opts.view;
    if (view.active && generation !== view.generation) await this.repairAll();
  }

  /** Forgets a sandbox that is being torn down. */
  forget(id: string): void {
    this.tracked.delete(id);
  }

  /** The lxcfs generation a sandbox's files come from (0: none), or undefined when not tracked. */
  generationOf(id: string): number | undefined {
    return this.tracked.get(id)?.generation;
  }

  /** Resolves once no pass runs and none will (shutdown waits for it before the helpers' spawner goes). */
  async settled(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    // A failed pass was logged by whoever started it (the driver's onStarted handler).
    while (this.running) await this.running.then(() => undefined, () => undefined);
  }

  /** Mounts the live lxcfs files into every tracked sandbox that lacks them; one pass at a time. */
  repairAll(): Promise<ProcViewRepairReport> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      let report: ProcViewRepairReport;
      do {
        this.again = false;
        report = await this.pass();
      } while (this.again);
      return report;
    })().finally(() => {
      this.running = null;
    });
    void this.running.then((report) => this.retryLater(report), () => undefined);
    return this.running;
  }

  /** Runs another pass after retryMs when this one left sandboxes without the live view. */
  private retryLater(report: ProcViewRepairReport): void {
    if (report.failed.length === 0 || this.retry || this.stopped) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      if (this.stopped) return;
      this.repairAll().catch((err: unknown) => this.opts.log.error({ err }, 'repairing the sandboxes\' lxcfs view failed'));
    }, this.opts.retryMs ?? PROC_VIEW_RETRY_MS);
    this.retry.unref();
  }

  private async pass(): Promise<ProcViewRepairReport> {
    const { view, log } = this.opts;
    const generation = view.generation;
    const t0 = performance.now();
    const report: ProcViewRepairReport = { generation, repaired: [], failed: [], durationMs: 0 };
    const files = view.files();
    if (!view.active || files.length === 0) return report;
    const args = files.flatMap((f) => [f.source, f.destination]);
    const stale = [...this.tracked].filter(([, t]) => t.generation !== generation);
    if (stale.length === 0) return report;
    const queue = [...stale];
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [id, t] = next;
        try {
          await this.repairOne(id, t.agentPid, args);
          // Still the same sandbox (not forgotten or re-tracked meanwhile): its files are current now.
          if (this.tracked.get(id) === t) t.generation = generation;
          report.repaired.push(id);
        } catch (err) {
          if (!this.tracked.has(id)) continue; // torn down meanwhile: nothing to repair
          const error = (err as Error).message;
          report.failed.push({ id, error });
          log.error({ sandbox: id, err }, 'could not mount the restarted lxcfs view into the sandbox: its /proc files answer ENOTCONN');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.parallel ?? 4, stale.length) }, worker));
    report.durationMs = Math.round((performance.now() - t0) * 100) / 100;
    this.lastReport = report;
    log.info({ generation, repaired: report.repaired, failed: report.failed.map((f) => f.id), ms: report.durationMs }, `lxcfs view mounted into ${report.repaired.length} running sandboxes (${report.failed.length} failed)`);
    return report;
  }

  private async repairOne(id: string, agentPid: number, args: string[]): Promise<void> {
    if (!(await (this.opts.isSandboxInit ?? inSandboxCgroup)(agentPid, id))) throw new Error(`pid ${agentPid} is no longer the sandbox's PID 1`);
    await this.opts.helper(['procview', String(agentPid), ...args]);
  }
}
