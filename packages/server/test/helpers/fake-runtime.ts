import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  ExecRequest,
  ExecResult,
  OutputLine,
  OutputStream,
  PoolStatus,
  ProcessExit,
  RuntimeDriver,
  RuntimeHealth,
  Sandbox,
  SandboxLimits,
  SandboxPool,
  SandboxProcess,
  SandboxSpec,
  SpawnRequest,
} from '../../src/runtime/driver.js';

/**
 * An in-memory RuntimeDriver for tests that need no root: each "sandbox" is a directory (its home,
 * or the workspace layer's `root/`) and its scripts are host child processes in their own process
 * groups, run by bash (or sh) with the sandbox's home as the default cwd. It honours env, cwd,
 * timeouts, cancel, pause/resume (SIGSTOP/SIGCONT of every process group), spawn without a pty and
 * destroy, and passes the generic part of the runtime conformance suite. It isolates nothing.
 */
export class FakeRuntimeDriver implements RuntimeDriver {
  readonly name = 'fake';
  readonly dataDir: string;
  private readonly sandboxes = new Map<string, FakeSandbox>();
  /** Delay of every create (ms), to exercise callers that overlap creations. */
  createDelayMs: number;
  /** When set, create fails with this message. */
  failCreate: string | undefined;
  /** Creations in flight now, the most at once, and totals. */
  readonly stats = { inFlight: 0, maxInFlight: 0, created: 0, destroyed: 0 };
  /** Called with every sandbox this driver creates (tests wrap exec with it). */
  onCreate: ((sb: FakeSandbox) => void) | undefined;

  /** The driver made its data directory itself (shutdown removes it). */
  private readonly ownsDataDir: boolean;

  constructor(opts: { dataDir?: string; createDelayMs?: number } = {}) {
    this.ownsDataDir = opts.dataDir === undefined;
    this.dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'mags-fake-rt-'));
    this.createDelayMs = opts.createDelayMs ?? 0;
  }

  async init(): Promise<void> {
    await mkdir(join(this.dataDir, 'sb'), { recursive: true });
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    this.stats.inFlight++;
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.stats.inFlight);
    try {
      if (this.createDelayMs) await new Promise((r) => setTimeout(r, this.createDelayMs));
      if (this.failCreate) throw new Error(this.failCreate);
      const id = 'fake-' + randomUUID().slice(0, 8);
      const dir = join(this.dataDir, 'sb', id);
      const root = spec.workspaceLayerDir ?? dir;
      await mkdir(join(root, 'root'), { recursive: true });
      await mkdir(join(dir, 'scripts'), { recursive: true });
      const sb = new FakeSandbox(id, { ...spec, limits: { ...spec.limits } }, dir, join(root, 'root'), () => {
        this.sandboxes.delete(id);
        this.stats.destroyed++;
      });
      this.sandboxes.set(id, sb);
      this.stats.created++;
      this.onCreate?.(sb);
      return sb;
    } finally {
      this.stats.inFlight--;
    }
  }

  list(): Sandbox[] {
    return [...this.sandboxes.values()];
  }

  async health(): Promise<RuntimeHealth> {
    return { ok: true, problems: [] };
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.sandboxes.values()].map((s) => s.destroy()));
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** What of sandbox `id` still exists: its directory or live processes (empty = destroyed cleanly). */
  leftovers(id: string, sb?: FakeSandbox): string[] {
    const left: string[] = [];
    if (existsSync(join(this.dataDir, 'sb', id))) left.push(`directory ${join(this.dataDir, 'sb', id)}`);
    for (const pgid of sb?.processGroups() ?? []) if (groupAlive(pgid)) left.push(`process group ${pgid}`);
    return left;
  }
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const SHELL = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** One fake sandbox: see FakeRuntimeDriver. */
export class FakeSandbox implements Sandbox {
  private readonly groups = new Set<number>();
  private paused = false;
  private destroying: Promise<void> | undefined;
  private scripts = 0;

  constructor(
    readonly id: string,
    readonly spec: SandboxSpec,
    private readonly dir: string,
    /** The sandbox's home and default cwd. */
    readonly home: string,
    private readonly onDestroyed: () => void,
  ) {}

  get destroyed(): boolean {
    return this.destroying !== undefined;
  }

  /** Process groups this sandbox started (live or not). */
  processGroups(): number[] {
    return [...this.groups];
  }

  private env(extra: Record<string, string> | undefined): Record<string, string> {
    return { HOME: this.home, USER: process.env.USER ?? 'root', PATH: DEFAULT_PATH, ...extra };
  }

  private cwdOf(cwd: string | undefined): string {
    return cwd === undefined || cwd === '/root' ? this.home : cwd;
  }

  private start(argv: string[], env: Record<string, string>, cwd: string, stdin: boolean): ChildProcess {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, detached: true, stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) this.groups.add(child.pid);
    return child;
  }

  async exec(req: ExecRequest, onOutput: (line: OutputLine) => void): Promise<ExecResult> {
    const started = Date.now();
    if (this.destroying) return { exitCode: null, reason: 'sandbox_failed', message: 'the sandbox is not running', durationMs: 0 };
    if (this.paused) await this.resume();
    const cwd = this.cwdOf(req.cwd);
    if (!existsSync(cwd) || !statSync(cwd).isDirectory()) {
      const text = `mags-guest: cannot change directory to ${req.cwd}: No such file or directory`;
      if (req.onData) req.onData('stderr', Buffer.from(text + '\n'), new Date());
      else onOutput({ stream: 'stderr', text, at: new Date() });
      return { exitCode: 127, reason: 'exited', durationMs: Date.now() - started };
    }
    if (req.pty) return { exitCode: null, reason: 'sandbox_failed', message: 'the fake runtime has no pseudo-terminals', durationMs: 0 };
    const file = join(this.dir, 'scripts', `${++this.scripts}.sh`);
    await writeFile(file, req.script);
    const child = this.start([SHELL, file], this.env(req.env), cwd, req.stdin !== undefined);
    if (req.stdin && child.stdin) void feed(child.stdin, req.stdin);
    let stopped: 'timeout' | 'cancelled' | undefined;
    const stop = (why: 'timeout' | 'cancelled') => {
      stopped ??= why;
      if (child.pid !== undefined) {
        signalGroup(child.pid, 'SIGCONT');
        signalGroup(child.pid, 'SIGKILL');
      }
    };
    const timer = req.timeoutMs ? setTimeout(() => stop('timeout'), req.timeoutMs) : undefined;
    const onAbort = () => stop('cancelled');
    if (req.signal?.aborted) onAbort();
    else req.signal?.addEventListener('abort', onAbort, { once: true });
    const drained = (['stdout', 'stderr'] as const).map((stream) => this.lines(child, stream, req, onOutput));
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('error', () => resolve({ code: null, signal: null }));
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    // Background processes may hold the pipes open: take what is there, then stop reading.
    await Promise.race([Promise.all(drained), new Promise((r) => setTimeout(r, 50))]);
    child.stdout?.destroy();
    child.stderr?.destroy();
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onAbort);
    await rm(file, { force: true });
    const durationMs = Date.now() - started;
    if (this.destroying && !stopped) return { exitCode: null, reason: 'sandbox_failed', message: 'the sandbox stopped while the script ran', durationMs };
    if (stopped === 'timeout') return { exitCode: exit.code, reason: 'timeout', message: `timed out after ${formatSeconds(req.timeoutMs!)}`, durationMs };
    if (stopped === 'cancelled') return { exitCode: exit.code, reason: 'cancelled', message: 'cancelled', durationMs };
    if (exit.signal) return { exitCode: null, reason: 'signaled', signal: exit.signal, message: `killed by ${exit.signal}`, durationMs };
    if (exit.code === null) return { exitCode: null, reason: 'sandbox_failed', message: 'the script could not start', durationMs };
    return { exitCode: exit.code, reason: 'exited', durationMs };
  }

  /** Splits one output stream into lines; resolves when the stream ended. */
  private lines(child: ChildProcess, stream: OutputStream, req: ExecRequest, onOutput: (line: OutputLine) => void): Promise<void> {
    return new Promise((resolve) => {
      const s = child[stream]!;
      const onData = req.onData;
      if (onData) {
        s.on('data', (chunk: Buffer) => onData(stream, chunk, new Date()));
        s.on('end', () => resolve());
        s.on('close', () => resolve());
        return;
      }
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          onOutput({ stream, text: buf.slice(0, i), at: new Date() });
          buf = buf.slice(i + 1);
        }
      });
      const end = () => {
        if (buf) onOutput({ stream, text: buf, at: new Date() });
        buf = '';
        resolve();
      };
      s.on('end', end);
      s.on('close', end);
    });
  }

  spawn(req: SpawnRequest, onData: (stream: OutputStream, data: Buffer) => void): SandboxProcess {
    if (this.destroying) throw new Error('the sandbox is not running');
    if (req.pty) throw new Error('the fake runtime has no pseudo-terminals');
    if (this.paused) void this.resume();
    const child = this.start(req.argv, this.env(req.env), this.cwdOf(req.cwd), req.stdin ?? false);
    const streams = (['stdout', 'stderr'] as const).map(
      (stream) => new Promise<void>((resolve) => child[stream]!.on('data', (d: Buffer) => onData(stream, d)).on('close', () => resolve())),
    );
    const exited = new Promise<ProcessExit>((resolve) => {
      child.on('error', () => resolve({ code: null, signal: null }));
      child.on('exit', async (code, signal) => {
        await Promise.race([Promise.all(streams), new Promise((r) => setTimeout(r, 50))]);
        resolve({ code, signal: signal ? signalNumber(signal) : null });
      });
    });
    return {
      exited,
      write: (data) => child.stdin?.write(data) ?? true,
      writable: () => new Promise<void>((resolve) => (!child.stdin || !child.stdin.writableNeedDrain || child.exitCode !== null ? resolve() : child.stdin.once('drain', resolve).once('close', resolve))),
      closeStdin: () => child.stdin?.end(),
      resize: () => {},
      kill: (signal, all) => {
        if (all) for (const g of this.groups) signalGroup(g, signalName(signal));
        else if (child.pid !== undefined) signalGroup(child.pid, signalName(signal));
      },
    };
  }

  async pause(): Promise<void> {
    if (this.destroying) throw new Error('the sandbox is not running');
    for (const g of this.groups) signalGroup(g, 'SIGSTOP');
    this.paused = true;
  }

  async resume(): Promise<void> {
    for (const g of this.groups) signalGroup(g, 'SIGCONT');
    this.paused = false;
  }

  async updateLimits(limits: Partial<Omit<SandboxLimits, 'diskGb'>>): Promise<void> {
    if (this.destroying) throw new Error('the sandbox is not running');
    for (const [k, v] of Object.entries(limits)) if (v !== undefined) (this.spec.limits as unknown as Record<string, number>)[k] = v;
  }

  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      for (const g of this.groups) {
        signalGroup(g, 'SIGKILL');
        signalGroup(g, 'SIGCONT');
      }
      const end = Date.now() + 5000;
      while ([...this.groups].some(groupAlive) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      await rm(this.dir, { recursive: true, force: true });
      this.onDestroyed();
    })();
    return this.destroying;
  }
}

const SIGNALS: Array<[NodeJS.Signals, number]> = [['SIGHUP', 1], ['SIGINT', 2], ['SIGQUIT', 3], ['SIGKILL', 9], ['SIGUSR1', 10], ['SIGSEGV', 11], ['SIGUSR2', 12], ['SIGPIPE', 13], ['SIGTERM', 15]];
function signalNumber(name: NodeJS.Signals): number {
  return SIGNALS.find(([n]) => n === name)?.[1] ?? 15;
}
function signalName(n: number): NodeJS.Signals {
  return SIGNALS.find(([, num]) => num === n)?.[0] ?? 'SIGTERM';
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

/**
 * Test double of the sandbox pool for unit tests of the layers above it (API, services): hands out
 * sandboxes of a FakeRuntimeDriver, with counters and failure injection. The real pool on the fake
 * driver is tested in pool.test.ts.
 */
export class FakePool implements SandboxPool {
  readonly driver = new FakeRuntimeDriver();
  busy = new Set<FakeSandbox>();
  acquired = 0;
  released = 0;
  /** Specs of every acquire, in order. */
  specs: SandboxSpec[] = [];
  /** When set, acquire fails with this message. */
  failAcquire: string | undefined;
  /** Extra delay of acquire (ms). */
  acquireDelayMs = 0;

  start(): void {}

  async acquire(spec: SandboxSpec): Promise<{ sandbox: Sandbox; warm: boolean }> {
    if (this.acquireDelayMs) await new Promise((r) => setTimeout(r, this.acquireDelayMs));
    if (this.failAcquire) throw new Error(this.failAcquire);
    this.specs.push(spec);
    const sb = (await this.driver.create(spec)) as FakeSandbox;
    this.busy.add(sb);
    this.acquired++;
    return { sandbox: sb, warm: true };
  }

  async release(sandbox: Sandbox): Promise<void> {
    this.busy.delete(sandbox as FakeSandbox);
    this.released++;
    await sandbox.destroy();
  }

  status(): PoolStatus {
    return { idle_vms: 1, busy_vms: this.busy.size, total_vms: 1 + this.busy.size, min_pool_size: 1, max_pool_size: 4 };
  }

  /** Destroys what is left and removes the driver's directory. */
  async stop(): Promise<void> {
    await this.driver.shutdown();
    rmSync(this.driver.dataDir, { recursive: true, force: true });
  }
}

/** The script's stdin: written as the pipe takes it, then closed (a failing source or closed pipe ends it). */
async function feed(pipe: NodeJS.WritableStream & { writableNeedDrain?: boolean; destroyed?: boolean }, src: AsyncIterable<Buffer>): Promise<void> {
  pipe.on('error', () => undefined); // EPIPE once the script stopped reading: it simply ends the feed
  try {
    for await (const chunk of src) {
      if (pipe.destroyed) break;
      if (!pipe.write(chunk)) await new Promise((r) => pipe.once('drain', r).once('close', r));
    }
  } finally {
    pipe.end();
  }
}
