/**
 * The sandbox's own view of its limits in /proc: one LXCFS process per daemon instance, mounted on a
 * private directory, whose files are bind-mounted over /proc/{meminfo,cpuinfo,stat,uptime,loadavg,
 * swaps,diskstats} and /sys/devices/system/cpu/online in every sandbox. LXCFS answers each read from
 * the cgroup of the reading process (memory limit, CPU quota and cpuset, usage) and the start time of
 * its PID namespace's init, so `free`, `top`, `uptime`, `nproc`-like sizing in Node, Python, Java and
 * build tools see what the sandbox was granted. Limits changed later (pooled sandboxes get theirs
 * when handed out) show on the next read: nothing is cached per sandbox here.
 *
 * Supervision: when the lxcfs process exits it is restarted (the dead mount is detached first). A
 * sandbox whose files came from the dead process reads ENOTCONN from them at once (the kernel aborts
 * a FUSE connection whose server is gone): it never hangs. Once the new process answers, the
 * `onStarted` listeners run: the driver then mounts the new files into every live sandbox
 * (procview.ts). Sandboxes created after the restart get the new mount directly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { run } from '../../../host/exec.js';

/** The /proc files LXCFS virtualizes, bind-mounted over the sandbox's own procfs. */
export const LXCFS_PROC_FILES = ['meminfo', 'cpuinfo', 'stat', 'uptime', 'loadavg', 'swaps', 'diskstats'];

/** Where the view is mounted and how it is started. */
export interface LxcfsOptions {
  /** Mount point; must be reachable by crun from inside the user namespace (under /run/mags/<instance>). */
  mountDir: string;
  log: Logger;
  /** The lxcfs binary (default: `lxcfs` on PATH). */
  binary?: string;
  /** How long start() waits for the mount (default 5 s). */
  startTimeoutMs?: number;
}

export class LxcfsView {
  private child: ChildProcess | null = null;
  private live = false;
  private stopped = false;
  private restartDelayMs = 100;
  private restartTimer: NodeJS.Timeout | null = null;
  /** Resolves once a start attempt (first or after a restart) settled; tests wait on it. */
  private starting: Promise<boolean> | null = null;
  /** How many times the process was started (1 = never restarted). */
  generation = 0;
  /** When the pending restart attempt is due (ms since the epoch), or null. */
  private restartAt: number | null = null;
  /** A start attempt is running (waiting for the files to answer). */
  private launching = false;
  private readonly startedListeners: Array<(generation: number) => void> = [];

  constructor(private readonly opts: LxcfsOptions) {}

  /** Whether sandboxes created now get the view. */
  get active(): boolean {
    return this.live;
  }

  /** The lxcfs process id, or null (tests kill it to check supervision). */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Calls `listener` with the generation each time lxcfs (re)started and its files answer. */
  onStarted(listener: (generation: number) => void): void {
    this.startedListeners.push(listener);
  }

  /**
   * Whether the view is live, waiting at most `maxMs` for a restart under way: at once when lxcfs
   * runs, was never started or stopped, or when its next attempt is due later than the bound.
   */
  async waitLive(maxMs: number): Promise<boolean> {
    const deadline = Date.now() + maxMs;
    while (!this.live && !this.stopped && Date.now() < deadline) {
      const underWay = this.launching || (this.restartAt !== null && this.restartAt <= deadline);
      if (!underWay) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.live;
  }

  /** Starts lxcfs and waits until its files answer; false (and a logged reason) when it cannot. */
  start(): Promise<boolean> {
    this.stopped = false;
    this.starting = this.launch();
    return this.starting;
  }

  /** Waits for the start attempt under way (after a restart), then tells whether the view is live. */
  async ready(): Promise<boolean> {
    while (this.restartTimer && !this.stopped) await new Promise((r) => setTimeout(r, 20));
    return this.starting ? this.starting : false;
  }

  private async launch(): Promise<boolean> {
    this.launching = true;
    try {
      return await this.launchOnce();
    } catch (err) {
      this.opts.log.error({ err }, 'lxcfs could not be started: sandboxes see the host totals in /proc');
      return false;
    } finally {
      this.launching = false;
    }
  }

  private async launchOnce(): Promise<boolean> {
    const { mountDir, log } = this.opts;
    // First: a dead connection at the mount point answers ENOTCONN even to mkdir.
    await this.detach();
    await mkdir(mountDir, { recursive: true, mode: 0o755 });
    const bin = this.opts.binary ?? 'lxcfs';
    // -f: stay in the foreground (supervised here); --enable-cfs: CPU count from the quota and cpuset;
    // -l: per-cgroup load averages; --enable-pidfd: no pid reuse races. The pid file lives beside the mount.
    const args = ['-f', '-l', '--enable-cfs', '--enable-pidfd', '-p', `${mountDir}.pid`, mountDir];
    let child: ChildProcess;
    try {
      child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
    } catch (err) {
      log.warn({ err }, 'lxcfs could not be started: sandboxes see the host totals in /proc (apt-get install lxcfs)');
      return false;
    }
    this.child = child;
    this.generation++;
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    const exited = new Promise<string>((resolve) => {
      child.once('error', (err) => resolve(`lxcfs could not run: ${err.message} (apt-get install lxcfs)`));
      child.once('exit', (code, signal) => resolve(`lxcfs exited (${signal ?? `code ${code}`}): ${stderr.trim().split('\n').slice(-3).join(' / ')}`));
    });
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 5000);
    const probe = join(mountDir, 'proc', 'meminfo');
    let failure: string | null = null;
    void exited.then((m) => (failure = m));
    while (failure === null && Date.now() < deadline) {
      if (await readFile(probe, 'utf8').then((t) => t.startsWith('MemTotal:'), () => false)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    if (failure !== null || Date.now() >= deadline) {
      log.warn({ reason: failure ?? 'no answer within the start timeout' }, 'lxcfs did not start: sandboxes see the host totals in /proc');
      if (failure === null) child.kill('SIGKILL');
      this.child = null;
      await this.detach();
      return false;
    }
    this.live = true;
    this.restartDelayMs = 100;
    log.info({ pid: child.pid, mountDir, generation: this.generation }, 'lxcfs started: sandboxes see their own memory and CPUs in /proc');
    void exited.then((reason) => this.onExit(child, reason));
    for (const listener of this.startedListeners) listener(this.generation);
    return true;
  }

  private onExit(child: ChildProcess, reason: string): void {
    if (this.child !== child) return;
    this.child = null;
    this.live = false;
    if (this.stopped) return;
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(this.restartDelayMs * 2, 10_000);
    this.opts.log.error({ reason, restartInMs: delay }, 'lxcfs died; restarting it (running sandboxes read ENOTCONN from its files until the new process is mounted into them)');
    this.restartAt = Date.now() + delay;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.restartAt = null;
      if (this.stopped) return;
      this.starting = this.launch().then((ok) => {
        if (!ok && !this.stopped) {
          this.child = child;
          this.onExit(child, 'restart failed');
        }
        return ok;
      });
    }, delay);
  }

  /** Detaches whatever is mounted at the mount point (a dead connection answers ENOTCONN). */
  private async detach(): Promise<void> {
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    if (!mounts.split('\n').some((l) => l.split(' ')[4] === this.opts.mountDir)) return;
    await run('umount', ['-l', this.opts.mountDir]).catch((err: unknown) => this.opts.log.warn({ err }, 'could not detach the old lxcfs mount'));
  }

  /** The view's files: host source and sandbox destination (none while lxcfs is not running). */
  files(): Array<{ source: string; destination: string }> {
    if (!this.live) return [];
    const d = this.opts.mountDir;
    const out = LXCFS_PROC_FILES.map((f) => ({ destination: `/proc/${f}`, source: join(d, 'proc', f) }));
    if (existsSync(join(d, 'sys', 'devices', 'system', 'cpu', 'online'))) {
      out.push({ destination: '/sys/devices/system/cpu/online', source: join(d, 'sys', 'devices', 'system', 'cpu', 'online') });
    }
    return out;
  }

  /** OCI bind mounts of the view (none while lxcfs is not running). */
  mounts(): Array<Record<string, unknown>> {
    const opts = ['bind', 'ro', 'nosuid', 'nodev', 'noexec'];
    return this.files().map((f) => ({ ...f, type: 'bind', options: opts }));
  }

  /** Stops lxcfs and detaches its mount. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.restartAt = null;
    const child = this.child;
    this.child = null;
    this.live = false;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 2000);
      await gone;
      clearTimeout(t);
    }
    await this.detach();
  }
}
