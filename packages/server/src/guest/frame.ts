/**
 * Frames of the guest protocol, host side: docs/guest-agent.md specifies the wire format;
 * native/frame.c is the guest agent's side. Both are checked against native/test/frames.json
 * (test/guest-frames.test.ts).
 */

/** Protocol version the host speaks; the guest announces its own in the hello frame. */
export const PROTOCOL_VERSION = 1;
/** Header: type u8, channel u32 BE, payload length u32 BE. */
export const FRAME_HEADER = 9;
/** Largest payload the host accepts from the guest (the guest sends at most 64 KiB at once). */
export const HOST_MAX_PAYLOAD = 1024 * 1024;
/** Largest payload the guest accepts from the host. */
export const GUEST_MAX_PAYLOAD = 64 * 1024 * 1024;

/** Frame types the host sends. */
export const ToGuest = { exec: 'X', stdin: 'I', eof: 'C', resize: 'W', kill: 'K', ping: 'P', grant: 'G' } as const;
/** Frame types the guest sends ('P' answers a ping). */
export const ToHost = { hello: 'H', started: 'S', stdout: 'O', stderr: 'E', exit: 'X', pong: 'P', ack: 'A' } as const;

/** Exec flags. */
export const EXEC_PTY = 1;
export const EXEC_STDIN = 2;
export const EXEC_LOG_FILE = 4;
/** The guest reads the channel's output only while it holds credit: OUTPUT_WINDOW, plus every grant. */
export const EXEC_OUTPUT_WINDOW = 8;
/** Output credit a channel started with EXEC_OUTPUT_WINDOW holds before its first grant. */
export const OUTPUT_WINDOW = 1024 * 1024;

export interface Frame {
  type: string;
  channel: number;
  payload: Buffer;
}

export type DecodeResult =
  | { kind: 'frame'; frame: Frame; size: number }
  | { kind: 'incomplete' }
  | { kind: 'too_large'; length: number };

const EMPTY = Buffer.alloc(0);

/** Encodes one frame (header and payload in one buffer). */
export function encodeFrame(type: string, channel: number, payload: Buffer = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  out[0] = type.charCodeAt(0);
  out.writeUInt32BE(channel, 1);
  out.writeUInt32BE(payload.length, 5);
  payload.copy(out, FRAME_HEADER);
  return out;
}

/**
 * Decodes the frame at `offset`. `too_large` is known as soon as the header is in: the receiver
 * closes the connection. The frame's payload is a view into `buf`.
 */
export function decodeFrame(buf: Buffer, maxPayload: number, offset = 0): DecodeResult {
  if (buf.length - offset < FRAME_HEADER) return { kind: 'incomplete' };
  const length = buf.readUInt32BE(offset + 5);
  if (length > maxPayload) return { kind: 'too_large', length };
  if (buf.length - offset < FRAME_HEADER + length) return { kind: 'incomplete' };
  const frame = {
    type: String.fromCharCode(buf[offset]!),
    channel: buf.readUInt32BE(offset + 1),
    payload: buf.subarray(offset + FRAME_HEADER, offset + FRAME_HEADER + length),
  };
  return { kind: 'frame', frame, size: FRAME_HEADER + length };
}

/** The sender announced a payload over the receiver's limit. */
export class FrameTooLargeError extends Error {
  constructor(readonly length: number) {
    super(`a ${length}-byte frame is over the limit`);
  }
}

/** Reassembles frames from a byte stream cut anywhere (copies each byte at most twice). */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** Bytes needed before the next decode can make progress. */
  private need = FRAME_HEADER;

  constructor(private readonly maxPayload: number) {}

  /** Adds bytes; returns the frames they complete, in order. Throws FrameTooLargeError. */
  push(chunk: Buffer): Frame[] {
    this.pending.push(chunk);
    this.pendingLen += chunk.length;
    if (this.pendingLen < this.need) return [];
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingLen);
    const frames: Frame[] = [];
    let off = 0;
    for (;;) {
      const r = decodeFrame(buf, this.maxPayload, off);
      if (r.kind === 'too_large') throw new FrameTooLargeError(r.length);
      if (r.kind === 'incomplete') break;
      frames.push(r.frame);
      off += r.size;
    }
    const rest = off === buf.length ? null : buf.subarray(off);
    this.pending = rest ? [rest] : [];
    this.pendingLen = rest ? rest.length : 0;
    this.need = rest && rest.length >= FRAME_HEADER ? FRAME_HEADER + rest.readUInt32BE(5) : FRAME_HEADER;
    return frames;
  }
}

/** The payload of an exec frame: starts a process on the frame's channel. */
export interface ExecPayload {
  /** EXEC_PTY | EXEC_STDIN | EXEC_LOG_FILE */
  flags: number;
  cols: number;
  rows: number;
  argv: string[];
  /** "KEY=value" strings. */
  env: string[];
  /** Empty: the guest's default (/root). */
  cwd: string;
  /** Present exactly when flags has EXEC_LOG_FILE. */
  logFile?: string;
}

const EXEC_FIXED = 13;
const EXEC_MAX_STRINGS = 100_000;

export function encodeExec(p: ExecPayload): Buffer {
  const strings = [...p.argv, ...p.env, p.cwd, ...(p.flags & EXEC_LOG_FILE ? [p.logFile ?? ''] : [])];
  for (const s of strings) if (s.includes('\0')) throw new Error('arguments and environment values may not contain NUL bytes');
  const head = Buffer.alloc(EXEC_FIXED);
  head[0] = p.flags;
  head.writeUInt16BE(p.cols, 1);
  head.writeUInt16BE(p.rows, 3);
  head.writeUInt32BE(p.argv.length, 5);
  head.writeUInt32BE(p.env.length, 9);
  return Buffer.concat([head, Buffer.from(strings.join('\0') + '\0')]);
}

/** Parses an exec payload as the guest does; null when malformed. */
export function decodeExec(b: Buffer): ExecPayload | null {
  if (b.length < EXEC_FIXED) return null;
  const flags = b[0]!;
  const argc = b.readUInt32BE(5);
  const envc = b.readUInt32BE(9);
  if (argc === 0 || argc > EXEC_MAX_STRINGS || envc > EXEC_MAX_STRINGS) return null;
  const strings: string[] = [];
  let at = EXEC_FIXED;
  for (let i = 0; i < argc + envc + 1 + (flags & EXEC_LOG_FILE ? 1 : 0); i++) {
    const nul = b.indexOf(0, at);
    if (nul < 0) return null;
    strings.push(b.toString('utf8', at, nul));
    at = nul + 1;
  }
  const out: ExecPayload = {
    flags,
    cols: b.readUInt16BE(1),
    rows: b.readUInt16BE(3),
    argv: strings.slice(0, argc),
    env: strings.slice(argc, argc + envc),
    cwd: strings[argc + envc]!,
  };
  if (flags & EXEC_LOG_FILE) out.logFile = strings[argc + envc + 1]!;
  return out;
}

export function encodeResize(cols: number, rows: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(cols, 0);
  b.writeUInt16BE(rows, 2);
  return b;
}

export function decodeResize(b: Buffer): { cols: number; rows: number } | null {
  return b.length < 4 ? null : { cols: b.readUInt16BE(0), rows: b.readUInt16BE(2) };
}

/** scope 0: the channel's process group; 1: every process in the sandbox. */
/** A grant: the guest may send `count` more output bytes on the channel. */
export function encodeGrant(count: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(count, 0);
  return b;
}

export function decodeGrant(b: Buffer): { count: number } | null {
  return b.length >= 4 ? { count: b.readUInt32BE(0) } : null;
}

export function encodeKill(signal: number, scope: 0 | 1): Buffer {
  return Buffer.from([signal, scope]);
}

export function decodeKill(b: Buffer): { signal: number; scope: number } | null {
  return b.length < 2 ? null : { signal: b[0]!, scope: b[1]! };
}

export function encodeStarted(pid: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(pid, 0);
  return b;
}

export function decodeStarted(b: Buffer): { pid: number } | null {
  return b.length < 4 ? null : { pid: b.readUInt32BE(0) };
}

/** kind 0: exited with code `value`; 1: killed by signal `value`. */
export function encodeExit(kind: 0 | 1, value: number): Buffer {
  const b = Buffer.alloc(5);
  b[0] = kind;
  b.writeUInt32BE(value, 1);
  return b;
}

export function decodeExit(b: Buffer): { kind: number; value: number } | null {
  return b.length < 5 ? null : { kind: b[0]!, value: b.readUInt32BE(1) };
}

/** Parses a hello payload ("<program> <version>"); null when it does not have that shape. */
export function parseHello(text: string): { program: string; version: number } | null {
  const m = /^(\S+) (\d+)$/.exec(text);
  return m ? { program: m[1]!, version: Number(m[2]) } : null;
}
