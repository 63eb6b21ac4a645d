import { connect } from 'node:net';
import { constants } from 'node:os';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { AcceptConnection, Channel, RejectConnection, ServerChannel, Session, TcpipRequestInfo } from 'ssh2';
import type { SandboxProcess, SpawnRequest } from '../runtime/driver.js';
import type { LiveAttachment } from '../sandboxes/live.js';

/** Where the image's SFTP server is (Debian's openssh-sftp-server). */
export const SFTP_SERVER = '/usr/lib/openssh/sftp-server';
/** Environment variables a session may set (`SendEnv`/`SetEnv`). */
const MAX_ENV = 64;
const SIGHUP = 1;

/** What sessions of one authenticated connection share. */
export interface ConnectionContext {
  /** The connection's attachment to its job (woken when the connection was accepted). */
  attachment: Promise<LiveAttachment>;
  /** Marks traffic (resets the idle timer). */
  activity: () => void;
  log: Logger;
}

/**
 * One SSH session channel: collects `pty-req`, `env` and `window-change`, then runs a login shell
 * (`shell`), `/bin/bash -c <command>` (`exec`) or the SFTP server (`subsystem sftp`) in the
 * sandbox through the guest agent, relays bytes both ways, stderr separately without a PTY, and
 * reports the exit status (or signal) before closing the channel.
 */
export function serveSession(session: Session, ctx: ConnectionContext): void {
  let pty: { cols: number; rows: number; term: string } | undefined;
  const env: Record<string, string> = {};
  let proc: SandboxProcess | undefined;
  let started = false;

  session.on('pty', (accept, _reject, info) => {
    pty = { cols: clampSize(info.cols, 80), rows: clampSize(info.rows, 24), term: safeTerm(info.term) };
    accept?.();
  });
  session.on('env', (accept, reject, info) => {
    if (Object.keys(env).length < MAX_ENV && /^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(info.key) && info.val.length <= 4096 && !info.val.includes('\0')) {
      env[info.key] = info.val;
      accept?.();
    } else reject?.();
  });
  session.on('window-change', (accept, _reject, info) => {
    if (pty) {
      pty.cols = clampSize(info.cols, pty.cols);
      pty.rows = clampSize(info.rows, pty.rows);
      proc?.resize(pty.cols, pty.rows);
    }
    accept?.();
  });
  session.on('signal', (accept, reject, info) => {
    const n = (constants.signals as Record<string, number>)[`SIG${info.name}`];
    if (n === undefined || !proc) return reject?.();
    proc.kill(n);
    accept?.();
  });

  const run = (channel: ServerChannel, argv: string[], withPty: boolean) => {
    if (started) return channel.close();
    started = true;
    const usePty = withPty && pty !== undefined;
    void start(channel, argv, usePty ? pty : undefined, { ...env, ...(pty ? { TERM: pty.term } : {}) }, ctx).then((p) => (proc = p));
  };
  session.on('shell', (accept) => run(accept(), ['/bin/bash', '-l'], true));
  session.on('exec', (accept, _reject, info) => run(accept(), ['/bin/bash', '-c', info.command], true));
  session.on('subsystem', (accept, reject, info) => {
    if (info.name !== 'sftp') return reject();
    run(accept(), [SFTP_SERVER], false);
  });
}

async function start(
  channel: ServerChannel,
  argv: string[],
  pty: { cols: number; rows: number } | undefined,
  env: Record<string, string>,
  ctx: ConnectionContext,
): Promise<SandboxProcess | undefined> {
  let att: LiveAttachment;
  try {
    att = await ctx.attachment;
  } catch (err) {
    channel.stderr.write(`mags: cannot reach the sandbox: ${(err as Error).message}\r\n`);
    channel.exit(255);
    channel.end();
    return undefined;
  }
  if (!att.sandbox.spawn) {
    channel.stderr.write('mags: this runtime cannot start processes for SSH\r\n');
    channel.exit(255);
    channel.end();
    return undefined;
  }
  const req: SpawnRequest = { argv, env, pty, stdin: true };
  let proc: SandboxProcess;
  try {
    let flow: OutputFlow | undefined;
    proc = att.sandbox.spawn(req, (stream, data) => {
      ctx.activity();
      flow!.write(stream === 'stderr' && !pty ? channel.stderr : channel, data);
    });
    flow = new OutputFlow(proc, channel);
  } catch (err) {
    channel.stderr.write(`mags: cannot start the process: ${(err as Error).message}\r\n`);
    channel.exit(255);
    channel.end();
    return undefined;
  }
  let exited = false;
  channel.on('data', (d: Buffer) => {
    ctx.activity();
    proc.write(d);
  });
  channel.on('end', () => {
    if (!pty) proc.closeStdin();
  });
  channel.on('close', () => {
    if (!exited) proc.kill(SIGHUP);
  });
  void proc.exited.then((exit) => {
    exited = true;
    if (exit.code !== null) channel.exit(exit.code);
    else if (exit.signal !== null) channel.exit(signalName(exit.signal), false, '');
    else {
      channel.stderr.write('mags: the sandbox went away\r\n');
      channel.exit(255);
    }
    channel.end();
  });
  return proc;
}

/**
 * A `-L` forward (direct-tcpip): only to the sandbox itself (`localhost`, `127.0.0.1`, `::1` or
 * its own address). A TCP connection to the sandbox's address when something listens there,
 * otherwise a relay inside the sandbox (bash's /dev/tcp) reaches apps bound to 127.0.0.1 only.
 */
export function serveForward(accept: AcceptConnection<ServerChannel>, reject: RejectConnection, info: TcpipRequestInfo, ctx: ConnectionContext): void {
  const port = info.destPort;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return reject();
  void ctx.attachment.then(
    (att) => {
      const ip = att.sandbox.ipAddress;
      const dest = info.destIP;
      if (!['localhost', '127.0.0.1', '::1', ip].includes(dest)) {
        ctx.log.info({ dest: dest.slice(0, 100), port }, 'SSH forward to another host refused');
        return reject();
      }
      if (ip) {
        const sock = connect({ host: ip, port });
        sock.once('connect', () => pipeSocket(accept(), sock, ctx));
        sock.once('error', (err: NodeJS.ErrnoException) => {
          if (err.code === 'ECONNREFUSED') relayInSandbox(accept, reject, att, port, ctx);
          else reject();
        });
      } else relayInSandbox(accept, reject, att, port, ctx);
    },
    () => reject(),
  );
}

function pipeSocket(channel: Channel, sock: import('node:net').Socket, ctx: ConnectionContext): void {
  sock.on('data', () => ctx.activity());
  channel.on('data', () => ctx.activity());
  sock.pipe(channel).pipe(sock);
  sock.on('error', () => channel.close());
  channel.on('close', () => sock.destroy());
}

function relayInSandbox(accept: AcceptConnection<ServerChannel>, reject: RejectConnection, att: LiveAttachment, port: number, ctx: ConnectionContext): void {
  if (!att.sandbox.spawn) return reject();
  const script = `exec 3<>/dev/tcp/127.0.0.1/${port} || exit 1; cat <&3 & cat >&3; wait`;
  const channel = accept();
  let flow: OutputFlow | undefined;
  const proc = att.sandbox.spawn({ argv: ['/bin/bash', '-c', script], stdin: true }, (stream, data) => {
    ctx.activity();
    if (stream === 'stdout') flow!.write(channel, data);
    else ctx.log.debug({ port, text: data.toString().slice(0, 200) }, 'SSH forward relay stderr');
  });
  flow = new OutputFlow(proc, channel);
  channel.on('data', (d: Buffer) => {
    ctx.activity();
    proc.write(d);
  });
  channel.on('end', () => proc.closeStdin());
  channel.on('close', () => proc.kill(SIGHUP));
  void proc.exited.then(() => channel.end());
}

/**
 * Back-pressure from an SSH channel to the process feeding it: a `write()` that returns false
 * (the client's window is full and ssh2's buffer passed its mark) pauses the process's output
 * until that stream drains; a closed channel resumes it for good, so the process can finish.
 */
export class OutputFlow {
  private waiting = new Set<Writable>();
  private closed = false;

  constructor(
    private readonly proc: Pick<SandboxProcess, 'pause' | 'resume'>,
    channel: { once(event: 'close', listener: () => void): unknown },
  ) {
    channel.once('close', () => {
      this.closed = true;
      this.waiting.clear();
      this.proc.resume?.();
    });
  }

  /** Writes `data` to `stream` (the channel or its stderr), pausing the process when it is full. */
  write(stream: Writable, data: Buffer): void {
    if (this.closed) return;
    if (stream.write(data) || this.waiting.has(stream)) return;
    this.waiting.add(stream);
    this.proc.pause?.();
    stream.once('drain', () => {
      this.waiting.delete(stream);
      if (this.waiting.size === 0 && !this.closed) this.proc.resume?.();
    });
  }
}

function clampSize(n: number, dflt: number): number {
  return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : dflt;
}

function safeTerm(term: string): string {
  return /^[A-Za-z0-9._+-]{1,64}$/.test(term) ? term : 'xterm-256color';
}

function signalName(n: number): string {
  for (const [name, num] of Object.entries(constants.signals)) if (num === n) return name.slice(3);
  return 'KILL';
}
