/**
 * Host side of the guest protocol (docs/guest-agent.md; frames in frame.ts). One connection per
 * sandbox, made by the guest agent to a socket the host listens on before the sandbox starts; the
 * host accepts exactly one connection and closes the listener, so nothing running in the sandbox
 * later can reach or impersonate the host end. Processes are multiplexed by channel.
 */
import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import type { OutputStream, ProcessExit, SandboxProcess, SpawnRequest } from '../runtime/driver.js';
import {
  EXEC_LOG_FILE,
  EXEC_OUTPUT_WINDOW,
  EXEC_PTY,
  EXEC_STDIN,
  FrameReader,
  FrameTooLargeError,
  HOST_MAX_PAYLOAD,
  OUTPUT_WINDOW,
  PROTOCOL_VERSION,
  ToGuest,
  ToHost,
  decodeExit,
  encodeExec,
  encodeFrame,
  encodeGrant,
  encodeKill,
  encodeResize,
  parseHello,
  type Frame,
} from './frame.js';

/** A process running inside the sandbox. */
export interface GuestProcess extends SandboxProcess {
  readonly channel: number;
}

interface Channel {
  onData: (stream: OutputStream, data: Buffer) => void;
  resolve: (exit: ProcessExit) => void;
  /** Stdin bytes sent and not yet acknowledged (`A` frames) by the guest. */
  inFlight: number;
  /** Writers waiting for the stdin window to have room. */
  waiters: Array<() => void>;
  /** The output window: what the guest may still send, given back as the consumer takes it. */
  credit: OutputCredit;
}

/** Output bytes taken by a consumer are granted back to the guest in batches of this size. */
export const GRANT_STEP = OUTPUT_WINDOW / 4;

/**
 * The host's half of a channel's output window (docs/guest-agent.md, "Limits and back-pressure").
 * The guest starts with OUTPUT_WINDOW bytes of credit and stops reading the process's output when
 * it runs out; every byte delivered to the consumer is granted back once the consumer is not
 * paused, in batches of `step`. So while paused, at most OUTPUT_WINDOW bytes of the channel reach
 * the host, and the process blocks on its full pipe.
 */
export class OutputCredit {
  private taken = 0;
  private isPaused = false;

  constructor(
    private readonly grant: (count: number) => void,
    private readonly step = GRANT_STEP,
  ) {}

  get paused(): boolean {
    return this.isPaused;
  }

  /** Bytes delivered and not yet granted back. */
  get outstanding(): number {
    return this.taken;
  }

  /** `n` output bytes went to the consumer. */
  delivered(n: number): void {
    this.taken += n;
    this.flush();
  }

  pause(): void {
    this.isPaused = true;
  }

  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    this.flush();
  }

  private flush(): void {
    if (this.isPaused || this.taken < this.step) return;
    const n = this.taken;
    this.taken = 0;
    this.grant(n);
  }
}

/** Stdin writes are cut into frames of at most this many bytes (well under the guest's limit). */
const STDIN_CHUNK = 256 * 1024;
/**
 * Most stdin bytes of a channel sent and not yet written to the process by the guest: `write`
 * returns false beyond it. Below the guest's own 1 MiB, so the guest never stops reading the
 * connection (which would hold up every other channel) for a process that does not read.
 */
export const STDIN_WINDOW = 512 * 1024;

/** Listens on `socketPath` for the guest agent's single connection. */
export function listenForGuest(socketPath: string): Promise<{ server: Server; connected: Promise<GuestConnection> }> {
  return new Promise((resolve, reject) => {
    const server = createServer({ allowHalfOpen: false });
    const connected = new Promise<GuestConnection>((ok, fail) => {
      server.once('connection', (sock) => {
        server.close();
        const conn = new GuestConnection(sock);
        conn.hello.then(() => ok(conn), fail);
      });
      server.once('close', () => fail(new Error('the guest agent socket closed before the guest agent connected')));
    });
    // The caller awaits `connected` (or abandons it when the sandbox failed to start).
    connected.catch(() => undefined);
    server.once('error', reject);
    server.listen(socketPath, () => {
      // Root in a sandbox is an unprivileged host user: it needs write access to connect.
      chmodSync(socketPath, 0o666);
      resolve({ server, connected });
    });
  });
}

/** The host end of one guest agent connection (a sandbox's PID 1, or the host process spawner). */
export class GuestConnection {
  /** Resolves with the guest's hello ("mags-guest 1") once it proved to speak PROTOCOL_VERSION. */
  readonly hello: Promise<string>;
  private channels = new Map<number, Channel>();
  private nextChannel = 1;
  private reader = new FrameReader(HOST_MAX_PAYLOAD);
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
    // Awaited by whoever waits for the guest; a connection that dies first rejects it unobserved.
    this.hello.catch(() => undefined);
    (sock as Socket).setNoDelay?.(true);
    sock.on('data', (b: Buffer) => this.onData(b));
    // 'close' follows every 'error' and reports the end to the owner (onClose).
    sock.on('error', () => undefined);
    sock.on('close', () => this.onClosed(new Error('the guest agent connection closed (the sandbox stopped or crashed)')));
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
    for (const ch of this.channels.values()) {
      ch.resolve({ code: null, signal: null });
      for (const w of ch.waiters.splice(0)) w();
    }
    this.channels.clear();
    for (const p of this.pings.values()) p();
    this.pings.clear();
    for (const fn of this.onCloseHandlers) fn(err);
  }

  /** Ends the connection because the guest broke the protocol (its sandbox stops with it). */
  private violation(what: string): void {
    this.sock.destroy();
    this.onClosed(new Error(`the guest agent ${what}; the sandbox was stopped`));
  }

  private onData(b: Buffer): void {
    if (this.closedError) return;
    let frames: Frame[];
    try {
      frames = this.reader.push(b);
    } catch (err) {
      if (!(err instanceof FrameTooLargeError)) throw err;
      // The guest never sends more than 64 KiB at once: a larger frame means it was tampered with.
      this.violation(`sent a ${err.length}-byte frame`);
      return;
    }
    for (const f of frames) {
      if (this.closedError) return;
      this.onFrame(f);
    }
  }

  private onFrame({ type, channel, payload }: Frame): void {
    switch (type) {
      case ToHost.hello: {
        const text = payload.toString();
        const hello = parseHello(text);
        if (hello?.version === PROTOCOL_VERSION) this.helloResolve(text);
        else this.violation(`speaks "${text}", not protocol version ${PROTOCOL_VERSION} (rebuild it: sh packages/server/native/build.sh)`);
        return;
      }
      case ToHost.stdout:
      case ToHost.stderr:
      {
        const ch = this.channels.get(channel);
        if (!ch) return;
        ch.onData(type === ToHost.stdout ? 'stdout' : 'stderr', payload);
        ch.credit.delivered(payload.length);
        return;
      }
      case ToHost.exit: {
        const exit = decodeExit(payload);
        if (!exit) return this.violation(`sent a ${payload.length}-byte exit frame`);
        const ch = this.channels.get(channel);
        if (!ch) return;
        this.channels.delete(channel);
        ch.resolve(exit.kind === 1 ? { code: null, signal: exit.value } : { code: exit.value, signal: null });
        for (const w of ch.waiters.splice(0)) w();
        return;
      }
      case ToHost.ack: {
        const ch = this.channels.get(channel);
        if (!ch || payload.length !== 4) return;
        ch.inFlight = Math.max(0, ch.inFlight - payload.readUInt32BE(0));
        if (ch.inFlight < STDIN_WINDOW) for (const w of ch.waiters.splice(0)) w();
        return;
      }
      case ToHost.pong: {
        const p = this.pings.get(channel);
        this.pings.delete(channel);
        p?.();
        return;
      }
      default:
        return; // 'S' (started) carries the pid, which nothing needs yet; unknown types are ignored.
    }
  }

  private send(type: string, chan: number, payload?: Buffer): void {
    if (this.closedError) return;
    this.sock.write(encodeFrame(type, chan, payload));
  }

  /** Round trip to the guest; resolves false when the connection is gone. */
  ping(): Promise<boolean> {
    if (this.closedError) return Promise.resolve(false);
    const chan = this.nextChannel++;
    return new Promise((ok) => {
      this.pings.set(chan, () => ok(!this.closedError));
      this.send(ToGuest.ping, chan);
    });
  }

  /**
   * Starts a process; `onData` receives its output chunks as they arrive. Output is windowed
   * (except with `logFile`): while the consumer has `pause()`d the process, at most OUTPUT_WINDOW
   * bytes arrive, then the process blocks writing until `resume()`.
   */
  spawn(opts: SpawnRequest & { logFile?: string }, onData: (stream: OutputStream, data: Buffer) => void): GuestProcess {
    if (this.closedError) throw this.closedError;
    const payload = encodeExec({
      flags: (opts.pty ? EXEC_PTY : 0) | (opts.stdin ? EXEC_STDIN : 0) | (opts.logFile ? EXEC_LOG_FILE : EXEC_OUTPUT_WINDOW),
      cols: opts.pty?.cols ?? 0,
      rows: opts.pty?.rows ?? 0,
      argv: opts.argv,
      env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
      cwd: opts.cwd ?? '/root',
      logFile: opts.logFile,
    });
    const chan = this.nextChannel++;
    let resolveExit!: (e: ProcessExit) => void;
    const exited = new Promise<ProcessExit>((ok) => (resolveExit = ok));
    const credit = new OutputCredit((count) => this.send(ToGuest.grant, chan, encodeGrant(count)));
    const channel: Channel = { onData, resolve: resolveExit, inFlight: 0, waiters: [], credit };
    this.channels.set(chan, channel);
    this.send(ToGuest.exec, chan, payload);
    return {
      channel: chan,
      exited,
      write: (data) => {
        const b = typeof data === 'string' ? Buffer.from(data) : data;
        if (!this.channels.has(chan)) return true;
        for (let at = 0; at < b.length; at += STDIN_CHUNK) this.send(ToGuest.stdin, chan, b.subarray(at, at + STDIN_CHUNK));
        channel.inFlight += b.length;
        return channel.inFlight < STDIN_WINDOW;
      },
      writable: () =>
        new Promise<void>((resolve) => {
          if (channel.inFlight < STDIN_WINDOW || !this.channels.has(chan) || this.closedError) resolve();
          else channel.waiters.push(resolve);
        }),
      closeStdin: () => this.send(ToGuest.eof, chan),
      resize: (cols, rows) => this.send(ToGuest.resize, chan, encodeResize(cols, rows)),
      kill: (signal, all = false) => this.send(ToGuest.kill, chan, encodeKill(signal, all ? 1 : 0)),
      pause: () => credit.pause(),
      resume: () => credit.resume(),
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
