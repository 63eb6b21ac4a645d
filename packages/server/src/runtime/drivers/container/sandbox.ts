/** One running crun sandbox: exec through its guest agent, limit updates, teardown. */
import { rmSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { GuestConnection, GuestProcess } from '../../../guest/client.js';
import { LineSplitter } from '../../../guest/client.js';
import type { ExecRequest, ExecResult, OutputLine, OutputStream, Sandbox, SandboxLimits, SandboxProcess, SandboxSpec, SandboxStats, SpawnRequest } from '../../driver.js';

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, num]) => [num as number, name]));
const SIGKILL = 9;
/** Scripts up to this size are passed inline to `bash -c`. */
const INLINE_SCRIPT_MAX = 100 * 1024;

/** What the sandbox needs from its driver. */
export interface SandboxHost {
  oomKills(id: string): Promise<number>;
  updateLimits(id: string, limits: Partial<Omit<SandboxLimits, 'diskGb'>>): Promise<void>;
  freeze(id: string, frozen: boolean): Promise<void>;
  stats(id: string): Promise<SandboxStats>;
  destroy(sandbox: ContainerSandbox): Promise<void>;
}

export class ContainerSandbox implements Sandbox {
  readonly spec: SandboxSpec;
  /** Host uid/gid of root inside (set by the driver from the sandbox's uid slot). */
  hostIdBase?: number;
  private limits: SandboxLimits;
  private oomBaseline = 0;
  private destroying: Promise<void> | null = null;
  private scriptSeq = 0;
  private paused = false;

  constructor(
    readonly id: string,
    spec: SandboxSpec,
    readonly ipAddress: string | undefined,
    private readonly agent: GuestConnection,
    private readonly host: SandboxHost,
    /** Host side of the sandbox's /run/mags (large scripts are passed as files there). */
    private readonly runDir: string,
  ) {
    this.spec = { ...spec, limits: { ...spec.limits } };
    this.limits = { ...spec.limits };
  }

  /** Reads the OOM counter the next exec compares against. */
  async start(): Promise<void> {
    this.oomBaseline = await this.host.oomKills(this.id);
  }

  get alive(): boolean {
    return !this.destroying && !this.agent.closed;
  }

  /** True once destroy() was called. */
  get destroyed(): boolean {
    return this.destroying !== null;
  }

  /** The limits in force now (after updateLimits). */
  get currentLimits(): SandboxLimits {
    return { ...this.limits };
  }

  /** True when the agent answers a round trip. */
  ping(): Promise<boolean> {
    return this.agent.ping();
  }

  async pause(): Promise<void> {
    if (this.paused || !this.alive) return;
    await this.host.freeze(this.id, true);
    this.paused = true;
  }

  async resume(): Promise<void> {
    if (!this.paused) return;
    await this.host.freeze(this.id, false);
    this.paused = false;
  }

  async stats(): Promise<SandboxStats> {
    return this.host.stats(this.id);
  }

  /** True while frozen by pause(). */
  get isPaused(): boolean {
    return this.paused;
  }

  async exec(req: ExecRequest, onOutput: (line: OutputLine) => void): Promise<ExecResult> {
    const started = performance.now();
    if (this.paused && this.alive) await this.resume();
    const duration = () => Math.round((performance.now() - started) * 1000) / 1000;
    if (!this.alive) return { exitCode: null, reason: 'sandbox_failed', message: 'the sandbox is not running', durationMs: 0 };
    const splitters: Record<OutputStream, LineSplitter> = {
      stdout: new LineSplitter((text) => onOutput({ stream: 'stdout', text, at: new Date() })),
      stderr: new LineSplitter((text) => onOutput({ stream: 'stderr', text, at: new Date() })),
    };
    let proc: GuestProcess;
    let scriptFile: string | null = null;
    try {
      let argv = ['/bin/bash', '-c', req.script];
      if (Buffer.byteLength(req.script) > INLINE_SCRIPT_MAX) {
        // One exec argument may hold at most 128 KiB (MAX_ARG_STRLEN): larger scripts go as a file.
        const name = `script-${++this.scriptSeq}.sh`;
        scriptFile = join(this.runDir, name);
        writeFileSync(scriptFile, req.script, { mode: 0o644 });
        argv = ['/bin/bash', `/run/mags/${name}`];
      }
      const onData = req.onData;
      proc = this.agent.spawn({ argv, env: req.env, cwd: req.cwd ?? '/root', stdin: req.stdin !== undefined, pty: req.pty }, onData ? (stream, data) => onData(stream, data, new Date()) : (stream, data) => splitters[stream].push(data));
    } catch (err) {
      if (scriptFile) rmSync(scriptFile, { force: true });
      return { exitCode: null, reason: 'sandbox_failed', message: (err as Error).message, durationMs: duration() };
    }
    let stopped: 'timeout' | 'cancelled' | null = null;
    let escalate: NodeJS.Timeout | undefined;
    const stop = (why: 'timeout' | 'cancelled') => {
      if (stopped) return;
      stopped = why;
      if (this.paused) {
        // A frozen agent cannot deliver the kill: thaw first (the agent reads the kill once it runs).
        this.paused = false;
        void this.host.freeze(this.id, false).catch(() => {});
      }
      proc.kill(SIGKILL);
      // Processes that left the group (setsid) may keep the output open: then end everything.
      escalate = setTimeout(() => proc.kill(SIGKILL, true), 2000);
    };
    const timer = req.timeoutMs !== undefined ? setTimeout(() => stop('timeout'), req.timeoutMs) : undefined;
    const onAbort = () => stop('cancelled');
    if (req.signal?.aborted) onAbort();
    else req.signal?.addEventListener('abort', onAbort, { once: true });
    const running = proc;
    req.onStarted?.({ resize: (cols, rows) => running.resize(cols, rows) });
    let ended = false;
    // Never rejects: a failing source ends the script's stdin (the source reports its own failure).
    if (req.stdin) void pumpStdin(proc, req.stdin, () => ended);
    const exit = await proc.exited;
    ended = true;
    if (scriptFile) rmSync(scriptFile, { force: true });
    if (timer) clearTimeout(timer);
    if (escalate) clearTimeout(escalate);
    req.signal?.removeEventListener('abort', onAbort);
    splitters.stdout.end();
    splitters.stderr.end();

    const durationMs = duration();
    if (exit.code === null && exit.signal === null) {
      return { exitCode: null, reason: 'sandbox_failed', message: 'the sandbox stopped while the script ran', durationMs };
    }
    if (stopped === 'timeout') {
      return { exitCode: exit.code, reason: 'timeout', message: `timed out after ${formatSeconds(req.timeoutMs!)}`, durationMs };
    }
    if (stopped === 'cancelled') return { exitCode: exit.code, reason: 'cancelled', message: 'cancelled', durationMs };
    const ooms = await this.host.oomKills(this.id).catch(() => this.oomBaseline);
    if (ooms > this.oomBaseline) {
      this.oomBaseline = ooms;
      return { exitCode: exit.code, reason: 'oom', message: `ran out of memory (limit ${this.limits.memoryMb} MiB)`, durationMs };
    }
    if (exit.signal !== null) {
      const name = SIGNAL_NAMES.get(exit.signal) ?? `signal ${exit.signal}`;
      return { exitCode: null, reason: 'signaled', signal: name, message: `killed by ${name}`, durationMs };
    }
    return { exitCode: exit.code, reason: 'exited', durationMs };
  }

  /**
   * Starts an interactive process (the SSH gateway's shells and commands): with `pty` it gets a
   * pseudo-terminal inside the sandbox, `write`/`resize`/`kill` relay input, window size and signals.
   */
  spawn(opts: SpawnRequest, onData: (stream: OutputStream, data: Buffer) => void): GuestProcess {
    if (!this.alive) throw new Error('the sandbox is not running');
    if (this.paused) {
      // spawn() is synchronous: thaw now; the agent reads the request once it runs again.
      this.paused = false;
      void this.host.freeze(this.id, false).catch(() => {});
    }
    return this.agent.spawn(opts, onData);
  }

  async updateLimits(limits: Partial<Omit<SandboxLimits, 'diskGb'>>): Promise<void> {
    const changed: Partial<Omit<SandboxLimits, 'diskGb'>> = {};
    if (limits.vcpus !== undefined && limits.vcpus !== this.limits.vcpus) changed.vcpus = limits.vcpus;
    if (limits.memoryMb !== undefined && limits.memoryMb !== this.limits.memoryMb) changed.memoryMb = limits.memoryMb;
    if (limits.pids !== undefined && limits.pids !== this.limits.pids) changed.pids = limits.pids;
    if (Object.keys(changed).length === 0) return;
    await this.host.updateLimits(this.id, changed);
    Object.assign(this.limits, changed);
    Object.assign(this.spec.limits, changed);
  }

  destroy(): Promise<void> {
    if (!this.destroying) {
      this.destroying = (async () => {
        // Frozen processes cannot die: thaw first, also when a pause() is still under way.
        await this.host.freeze(this.id, false).catch(() => {});
        this.paused = false;
        this.agent.close();
        await this.host.destroy(this);
      })();
    }
    return this.destroying;
  }
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

/**
 * Feeds `src` to a process's stdin within its window, then closes it; stops when the process
 * ended. A source that fails ends the stdin like EOF: the source reports its own failure.
 */
export async function pumpStdin(proc: SandboxProcess, src: AsyncIterable<Buffer>, ended: () => boolean): Promise<void> {
  try {
    for await (const chunk of src) {
      if (ended()) break;
      if (!proc.write(chunk)) await proc.writable();
    }
  } catch {
    // Reported by the source (StdinHub answers the upload with the error); the process gets EOF.
  } finally {
    proc.closeStdin();
  }
}
