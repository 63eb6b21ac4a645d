/**
 * The host end of `mags-guest fs serve` (native/guest-fs-serve.c): one long-lived process per
 * sandbox that answers the files API's small operations in one round trip each, multiplexed over
 * its stdin and stdout. Started by the first request, started again by the next request after it
 * died (killed inside the sandbox, or a malformed answer), gone with the sandbox (a sleep or a stop
 * destroys it). Everything it sends is checked: an answer for no pending request, a bad status or
 * an oversized frame ends the process; what was pending is sent again (RETRIED) or fails with EIO.
 */
import type { Sandbox, SandboxProcess } from '../runtime/driver.js';
import { FsError, type FsErrorKind } from './types.js';

/** Where the guest agent binary is inside every sandbox. */
export const GUEST_AGENT_PATH = '/run/mags/agent';

/** The operations, as the serve process names them. */
export type ServeOp = 'stat' | 'list' | 'read' | 'write' | 'rm' | 'mkdir' | 'mv';
const OP_BYTE: Record<ServeOp, number> = { stat: 0x73, list: 0x6c, read: 0x72, write: 0x77, rm: 0x64, mkdir: 0x6d, mv: 0x76 };
/**
 * Operations sent again once when the process died under them: they change nothing, or (a write:
 * a temporary file renamed over the path) doing them twice leaves what doing them once leaves.
 */
const RETRIED = new Set<ServeOp>(['stat', 'list', 'read', 'write']);
/** Largest answer accepted (the serve process never sends more than 4 MiB plus a header line). */
const MAX_ANSWER = 4 * 1024 * 1024 + 4096;
const HEADER = 9;
const SIGKILL = 9;

const KINDS = new Set<FsErrorKind>(['ENOENT', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ENOTEMPTY', 'ENOSPC', 'EACCES', 'EPERM', 'EROFS', 'ELOOP', 'ENAMETOOLONG', 'EXDEV', 'EINVAL', 'EBUSY', 'EMFILE', 'ENOTREG', 'ESHORT', 'EIO']);

/**
 * What an operation answered: its output, or `oneShot` (too large to answer here, or no serve
 * process in this sandbox: run the one-shot `mags-guest fs` operation instead).
 */
export type ServeAnswer = { oneShot: false; payload: Buffer } | { oneShot: true };

interface Pending {
  op: ServeOp;
  frame: Buffer;
  retried: boolean;
  resolve(a: ServeAnswer): void;
  reject(err: Error): void;
}

/** The error of a failed answer (`CODE message`). */
function answerError(text: string): FsError {
  const sp = text.indexOf(' ');
  const kind = (sp > 0 ? text.slice(0, sp) : text) as FsErrorKind;
  if (KINDS.has(kind)) return new FsError(kind, text.slice(sp + 1));
  return new FsError('EIO', `the files helper in the sandbox failed: ${text.slice(0, 500)}`);
}

/** One sandbox's `mags-guest fs serve` process and its pending requests. */
export class FsServe {
  private proc: SandboxProcess | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buf: Buffer = Buffer.alloc(0);
  private stderr = '';
  /** Stdin writes wait here while the process's stdin window is full. */
  private gate: Promise<void> = Promise.resolve();
  /** How many processes this sandbox has had (1 after the first request; more after restarts). */
  starts = 0;
  /** Answers received from the current process. */
  private answered = 0;
  /**
   * False once a process exited on its own before answering anything (a guest agent without
   * `fs serve`): every request then answers `oneShot`.
   */
  private usable = true;

  constructor(private readonly sandbox: Sandbox) {}

  /**
   * Runs one operation. `args` are its arguments (no NUL inside: paths are checked before), `data`
   * a write's body. Rejects with an FsError.
   */
  request(op: ServeOp, args: string[], data?: Buffer): Promise<ServeAnswer> {
    const parts: Buffer[] = args.map((a) => Buffer.from(`${a}\0`, 'utf8'));
    if (data) parts.push(data);
    const payload = Buffer.concat(parts);
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    const frame = Buffer.alloc(HEADER + payload.length);
    frame.writeUInt32BE(id, 0);
    frame[4] = OP_BYTE[op];
    frame.writeUInt32BE(payload.length, 5);
    payload.copy(frame, HEADER);
    if (!this.usable) return Promise.resolve({ oneShot: true });
    return new Promise<ServeAnswer>((resolve, reject) => {
      const p: Pending = { op, frame, retried: false, resolve, reject };
      this.pending.set(id, p);
      this.send(id, p);
    });
  }

  private send(id: number, p: Pending): void {
    let proc: SandboxProcess;
    try {
      proc = this.process();
    } catch (err) {
      this.pending.delete(id);
      p.reject(new FsError('EIO', `cannot start the files helper in the sandbox: ${(err as Error).message}`));
      return;
    }
    this.gate = this.gate.then(() => {
      if (this.proc !== proc) return; // the process died meanwhile: the exit handler resent or failed it
      if (!proc.write(p.frame)) return proc.writable();
    });
  }

  private process(): SandboxProcess {
    if (this.proc) return this.proc;
    if (!this.sandbox.spawn) throw new Error('this runtime cannot run processes in a sandbox (no spawn)');
    this.buf = Buffer.alloc(0);
    this.stderr = '';
    this.answered = 0;
    this.gate = Promise.resolve();
    const proc = this.sandbox.spawn({ argv: [GUEST_AGENT_PATH, 'fs', 'serve'], cwd: '/', stdin: true }, (stream, data) => {
      if (this.proc !== proc) return;
      if (stream === 'stderr') {
        this.stderr = (this.stderr + data.toString('utf8')).slice(-2000);
        return;
      }
      this.receive(proc, data);
    });
    this.proc = proc;
    this.starts++;
    void proc.exited.then((exit) => {
      if (exit.code !== null && exit.code < 128 && this.answered === 0 && this.proc === proc) this.usable = false;
      this.died(proc, exit.code === null && exit.signal === null ? 'the sandbox went away' : exit.signal !== null ? `killed by signal ${exit.signal}` : `exit code ${exit.code}`);
    });
    return proc;
  }

  private receive(proc: SandboxProcess, data: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    while (this.buf.length >= HEADER) {
      const id = this.buf.readUInt32BE(0);
      const status = this.buf[4]!;
      const len = this.buf.readUInt32BE(5);
      const p = this.pending.get(id);
      if (len > MAX_ANSWER || status > 2 || !p) {
        this.broken(proc, `an answer the host cannot use (id ${id}, status ${status}, ${len} bytes)`);
        return;
      }
      if (this.buf.length < HEADER + len) return;
      const payload = Buffer.from(this.buf.subarray(HEADER, HEADER + len));
      this.buf = this.buf.subarray(HEADER + len);
      this.pending.delete(id);
      this.answered++;
      if (status === 0) p.resolve({ oneShot: false, payload });
      else if (status === 2) p.resolve({ oneShot: true });
      else p.reject(answerError(payload.toString('utf8')));
    }
  }

  /** A malformed answer: the process is ended, what is pending fails (or is resent) at once. */
  private broken(proc: SandboxProcess, why: string): void {
    this.stderr = `${this.stderr}\n${why}`.slice(-2000);
    this.buf = Buffer.alloc(0);
    proc.kill(SIGKILL);
    this.died(proc, 'it sent an answer the host cannot use');
  }

  private died(proc: SandboxProcess, how: string): void {
    if (this.proc !== proc) return;
    this.proc = undefined;
    const left = [...this.pending.entries()];
    this.pending.clear();
    const detail = this.stderr.trim().slice(-500);
    for (const [id, p] of left) {
      if (!this.usable) {
        p.resolve({ oneShot: true });
        continue;
      }
      // Sent once more to a new process, unless the sandbox itself is gone.
      if (RETRIED.has(p.op) && !p.retried && how !== 'the sandbox went away') {
        p.retried = true;
        this.pending.set(id, p);
        this.send(id, p);
      } else {
        p.reject(new FsError('EIO', `the files helper in the sandbox ended (${how})${detail ? `: ${detail}` : ''}`));
      }
    }
  }
}

/** The serve process of each sandbox, created on first use; a new sandbox (a wake) gets a new one. */
export class FsServePool {
  private readonly serves = new WeakMap<Sandbox, FsServe>();

  get(sandbox: Sandbox): FsServe {
    let s = this.serves.get(sandbox);
    if (!s) {
      s = new FsServe(sandbox);
      this.serves.set(sandbox, s);
    }
    return s;
  }
}
