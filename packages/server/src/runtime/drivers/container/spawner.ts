/**
 * The daemon's process spawner: a `mags-guest host` child that forks crun and the layer helpers on
 * request, over the guest protocol (docs/guest-agent.md) on a socketpair (fd 3). Forking the large Node process for each
 * command cost more CPU than the commands themselves (page-table copies and copy-on-write faults);
 * the static guest agent binary forks in microseconds. Restarted on demand if it dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { GuestConnection } from '../../../guest/client.js';
import type { RunResult } from '../../../host/exec.js';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface SpawnerRunOptions {
  /** Send the command's stdout and stderr to this file instead of collecting them. */
  logFile?: string;
  /** Kill the command (SIGKILL) and fail after this long. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed (default: no stdin). */
  input?: string;
}

export class HostSpawner {
  private child: ChildProcess | null = null;
  private conn: Promise<GuestConnection> | null = null;
  private inflight = 0;
  private resolved = new Map<string, string>();

  constructor(
    private readonly agentPath: string,
    private readonly log: Logger,
    /** `cgroup.procs` files the spawner joins when it starts (its commands inherit the cgroups). */
    private readonly cgroupProcs: () => string[] = () => [],
  ) {}

  private connect(): Promise<GuestConnection> {
    if (this.conn) return this.conn;
    const child = spawn(this.agentPath, ['host'], { stdio: ['ignore', 'ignore', 'inherit', 'pipe'], detached: true });
    this.child = child;
    child.unref();
    // Before its first command: everything it forks from now on starts in these cgroups.
    for (const procs of child.pid ? this.cgroupProcs() : []) {
      try {
        writeFileSync(procs, String(child.pid));
      } catch (err) {
        this.log.warn({ err, cgroup: procs }, 'could not move the host process spawner into its cgroup; its commands run at normal CPU weight');
      }
    }
    const sock = child.stdio[3] as Socket;
    const conn = new GuestConnection(sock);
    // Held while commands wait for it: otherwise a daemon with nothing else pending (e.g. during
    // init, before it listens) would exit while the spawner starts.
    conn.setRef(this.inflight > 0);
    const reset = () => {
      if (this.child === child) {
        this.child = null;
        this.conn = null;
      }
    };
    conn.onClose(reset);
    child.once('exit', reset);
    child.once('error', (err) => this.log.error({ err }, 'the host process spawner failed'));
    this.conn = conn.hello.then(() => conn);
    this.conn.catch(reset);
    return this.conn;
  }

  /** The agent execs without a PATH search: resolve bare command names once. */
  private resolve(cmd: string): string {
    if (cmd.includes('/')) return cmd;
    let path = this.resolved.get(cmd);
    if (!path) {
      path = PATH.split(':').map((d) => join(d, cmd)).find((p) => existsSync(p)) ?? cmd;
      this.resolved.set(cmd, path);
    }
    return path;
  }

  /** Runs a command on the host; rejects with its stderr when it fails. */
  async run(cmd: string, args: string[], opts: SpawnerRunOptions = {}): Promise<RunResult> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    this.inflight++;
    try {
      const conn = await this.connect();
      conn.setRef(true);
      const proc = conn.spawn(
        { argv: [this.resolve(cmd), ...args], env: { PATH }, cwd: '/', logFile: opts.logFile, stdin: opts.input !== undefined },
        (stream, data) => (stream === 'stdout' ? out : err).push(data),
      );
      if (opts.input !== undefined) {
        if (opts.input.length > 0) proc.write(opts.input);
        proc.closeStdin();
      }
      let timedOut = false;
      const timer = opts.timeoutMs
        ? setTimeout(() => {
            timedOut = true;
            proc.kill(9);
          }, opts.timeoutMs)
        : undefined;
      const exit = await proc.exited.finally(() => clearTimeout(timer));
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      if (timedOut) throw new Error(`${cmd} ${args.join(' ')} did not finish within ${opts.timeoutMs} ms`);
      if (exit.code === 0) return { stdout, stderr };
      if (exit.code === null && exit.signal === null) throw new Error(`${cmd}: the host process spawner went away`);
      const how = exit.signal !== null ? `signal ${exit.signal}` : `exit ${exit.code}`;
      const e = new Error(`${cmd} ${args.join(' ')} failed (${how}): ${stderr.trim() || stdout.trim().slice(-500)}`);
      throw Object.assign(e, { stdout, stderr, exitCode: exit.code });
    } finally {
      if (--this.inflight === 0) this.conn?.then((c) => c.setRef(false)).catch(() => {});
    }
  }

  /** Stops the spawner (commands still running are left to finish on their own). */
  close(): void {
    this.conn?.then((c) => c.close()).catch(() => {});
    this.child?.kill('SIGTERM');
    this.child = null;
    this.conn = null;
  }
}
