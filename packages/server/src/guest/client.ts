/**
 * Host side of the guest agent protocol (see native/mags-agent.c for the wire format). One
 * connection per sandbox, made by the agent to a socket the host listens on before the sandbox
 * starts; the host accepts exactly one connection and closes the listener, so nothing running in
 * the sandbox later can reach or impersonate the host end. Processes are multiplexed by channel.
 */
import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import type { OutputStream, ProcessExit, SandboxProcess, SpawnRequest } from '../runtime/driver.js';

/** A process running inside the sandbox. */
export interface AgentProcess extends SandboxProcess {
  readonly channel: number;
}

interface Channel {
  onData: (stream: OutputStream, data: Buffer) => void;
  resolve: (exit: ProcessExit) => void;
}

const HEADER = 9;
/** Largest frame the host accepts from an agent. */
const MAX_FRAME = 1024 * 1024;

/** Listens on `socketPath` for the agent's single connection. */
export function listenForAgent(socketPath: string): Promise<{ server: Server; connected: Promise<AgentConnection> }> {
  return new Promise((resolve, reject) => {
    const server = createServer({ allowHalfOpen: false });
    const connected = new Promise<AgentConnection>((ok, fail) => {
      server.once('connection', (sock) => {
        server.close();
        const conn = new AgentConnection(sock);
        conn.hello.then(() => ok(conn), fail);
      });
      server.once('close', () => fail(new Error('agent socket closed before the agent connected')));
    });
    connected.catch(() => {});
    server.once('error', reject);
    server.listen(socketPath, () => {
      // Root in a sandbox is an unprivileged host user: it needs write access to connect.
      chmodSync(socketPath, 0o666);
      resolve({ server, connected });
    });
  });
}

export class AgentConnection {
  readonly hello: Promise<string>;
  private channels = new Map<number, Channel>();
  private nextChannel = 1;
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private closedError: Error | null = null;
  private helloResolve!: (v: string) => void;
  private helloReject!: (e: Error) => void;
  private pings = new Map<number, () => void>();
  private onCloseHandlers: Array<(err: Error) => void> = [];

  constructor(private readonly sock: Socket | Duplex) {
    this.hello = new Promise((ok, fail) => {
      this.helloResolve = ok;
      this.helloReject = fail;
    });
    this.hello.catch(() => {});
    (sock as Socket).setNoDelay?.(true);
    sock.on('data', (b: Buffer) => this.onData(b));
    sock.on('error', () => {});
    sock.on('close', () => this.onClosed(new Error('the sandbox agent connection closed (the sandbox stopped or crashed)')));
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  /** Called once when the connection ends. */
  onClose(fn: (err: Error) => void): void {
    if (this.closedError) fn(this.closedError);
    else this.onCloseHandlers.push(fn);
  }

  private onClosed(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    this.helloReject(err);
    for (const ch of this.channels.values()) ch.resolve({ code: null, signal: null });
    this.channels.clear();
    for (const p of this.pings.values()) p();
    this.pings.clear();
    for (const fn of this.onCloseHandlers) fn(err);
  }

  private onData(b: Buffer): void {
    this.pending.push(b);
    this.pendingLen += b.length;
    if (this.pendingLen < HEADER) return;
    let buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingLen);
    let off = 0;
    while (buf.length - off >= HEADER) {
      const len = buf.readUInt32BE(off + 5);
      if (len > MAX_FRAME) {
        // The agent never sends more than 64 KiB at once: a larger frame means it was tampered with.
        this.sock.destroy();
        this.onClosed(new Error(`the sandbox agent sent a ${len}-byte frame; the sandbox was stopped`));
        return;
      }
      if (buf.length - off < HEADER + len) break;
      const type = String.fromCharCode(buf[off]!);
      const chan = buf.readUInt32BE(off + 1);
      this.onFrame(type, chan, buf.subarray(off + HEADER, off + HEADER + len));
      off += HEADER + len;
    }
    if (off === buf.length) {
      this.pending = [];
      this.pendingLen = 0;
    } else {
      buf = buf.subarray(off);
      this.pending = [buf];
      this.pendingLen = buf.length;
    }
  }

  private onFrame(type: string, chan: number, payload: Buffer): void {
    switch (type) {
      case 'H':
        this.helloResolve(payload.toString());
        return;
      case 'O':
      case 'E':
        this.channels.get(chan)?.onData(type === 'O' ? 'stdout' : 'stderr', payload);
        return;
      case 'X': {
        const ch = this.channels.get(chan);
        if (!ch) return;
        this.channels.delete(chan);
        const value = payload.readUInt32BE(1);
        ch.resolve(payload[0] === 1 ? { code: null, signal: value } : { code: value, signal: null });
        return;
      }
      case 'P': {
        const p = this.pings.get(chan);
        this.pings.delete(chan);
        p?.();
        return;
      }
      default:
        return; // 'S' (started) carries the pid; nothing needs it yet.
    }
  }

  private send(type: string, chan: number, payload: Buffer = Buffer.alloc(0)): void {
    if (this.closedError) return;
    const h = Buffer.allocUnsafe(HEADER);
    h[0] = type.charCodeAt(0);
    h.writeUInt32BE(chan, 1);
    h.writeUInt32BE(payload.length, 5);
    this.sock.write(payload.length ? Buffer.concat([h, payload]) : h);
  }

  /** Round trip to the agent; resolves false when the connection is gone. */
  ping(): Promise<boolean> {
    if (this.closedError) return Promise.resolve(false);
    const chan = this.nextChannel++;
    return new Promise((ok) => {
      this.pings.set(chan, () => ok(!this.closedError));
      this.send('P', chan);
    });
  }

  /** Starts a process; `onData` receives its output chunks as they arrive. */
  spawn(opts: SpawnRequest & { logFile?: string }, onData: (stream: OutputStream, data: Buffer) => void): AgentProcess {
    if (this.closedError) throw this.closedError;
    const chan = this.nextChannel++;
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const strings = [...opts.argv, ...env, opts.cwd ?? '/root', ...(opts.logFile ? [opts.logFile] : [])];
    for (const s of strings) if (s.includes('\0')) throw new Error('arguments and environment values may not contain NUL bytes');
    const head = Buffer.alloc(13);
    head[0] = (opts.pty ? 1 : 0) | (opts.stdin ? 2 : 0) | (opts.logFile ? 4 : 0);
    head.writeUInt16BE(opts.pty?.cols ?? 0, 1);
    head.writeUInt16BE(opts.pty?.rows ?? 0, 3);
    head.writeUInt32BE(opts.argv.length, 5);
    head.writeUInt32BE(env.length, 9);
    const body = Buffer.from(strings.join('\0') + '\0');
    let resolveExit!: (e: ProcessExit) => void;
    const exited = new Promise<ProcessExit>((ok) => (resolveExit = ok));
    this.channels.set(chan, { onData, resolve: resolveExit });
    this.send('X', chan, Buffer.concat([head, body]));
    return {
      channel: chan,
      exited,
      write: (data) => this.send('I', chan, typeof data === 'string' ? Buffer.from(data) : data),
      closeStdin: () => this.send('C', chan),
      resize: (cols, rows) => {
        const b = Buffer.alloc(4);
        b.writeUInt16BE(cols, 0);
        b.writeUInt16BE(rows, 2);
        this.send('W', chan, b);
      },
      kill: (signal, all = false) => this.send('K', chan, Buffer.from([signal, all ? 1 : 0])),
    };
  }

  close(): void {
    this.sock.destroy();
  }

  /** Lets the process exit while this connection is idle (the host spawner), or not. */
  setRef(ref: boolean): void {
    const s = this.sock as Socket;
    if (ref) s.ref?.();
    else s.unref?.();
  }
}

/** Splits a byte stream into lines (UTF-8 safe); over-long lines are cut at `maxLine` characters. */
export class LineSplitter {
  private decoder = new StringDecoder('utf8');
  private partial = '';

  constructor(
    private readonly emit: (text: string) => void,
    private readonly maxLine = 64 * 1024,
  ) {}

  push(data: Buffer): void {
    const text = this.partial + this.decoder.write(data);
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      for (let from = start; ; from += this.maxLine) {
        this.emit(text.slice(from, Math.min(nl, from + this.maxLine)));
        if (from + this.maxLine >= nl) break;
      }
      start = nl + 1;
    }
    this.partial = text.slice(start);
    while (this.partial.length > this.maxLine) {
      this.emit(this.partial.slice(0, this.maxLine));
      this.partial = this.partial.slice(this.maxLine);
    }
  }

  /** Emits what is left as a final partial line. */
  end(): void {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    if (rest.length > 0) this.emit(rest);
  }
}
