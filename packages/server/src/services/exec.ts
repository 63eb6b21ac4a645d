import { StringDecoder } from 'node:string_decoder';
import type { Logger } from 'pino';
import type { OutputStream, ProcessExit, SandboxProcess } from '../runtime/driver.js';
import type { LiveAttachment, LiveSandboxes, AttachPurpose } from '../sandboxes/live.js';
import type { Job } from '../storage/metadata/store.js';
import { AppError, isAppError } from './errors.js';
import type { JobsService } from './jobs.js';
import type { User } from './types.js';

/** Exit code of a command killed by its timeout (as timeout(1) reports it). */
export const EXEC_TIMEOUT_EXIT_CODE = 124;
/** Default wall-clock limit of one exec in seconds. */
export const DEFAULT_EXEC_TIMEOUT_SECONDS = 300;
/** Longest allowed exec timeout in seconds (24 h). */
export const MAX_EXEC_TIMEOUT_SECONDS = 86_400;
/** Bytes of each stream (output, stderr) a buffered exec answer keeps; the rest is dropped and `truncated` set. */
export const DEFAULT_EXEC_MAX_BUFFER_BYTES = 10 * 1024 * 1024;

export interface ExecCommand {
  command: string;
  timeoutSeconds?: number;
  env?: Record<string, string>;
  cwd?: string;
  /** Bytes written to the command's stdin, which is then closed (absent: stdin is /dev/null). */
  stdin?: string;
}

/** How a command ended. `exitCode` is 124 with `timedOut`, 128+n when killed by signal n. */
export interface ExecEnd {
  exitCode: number;
  timedOut: boolean;
  /** Signal number when the process was killed by one. */
  signal: number | null;
  durationMs: number;
}

export interface ExecBuffered extends ExecEnd {
  output: string;
  stderr: string;
  /** True when a stream passed the buffer cap and its tail was dropped. */
  truncated: boolean;
}

/** A command started in a sandbox: output arrives through the handler given to `start`. */
export interface RunningExec {
  readonly job: Job;
  readonly ended: Promise<ExecEnd>;
  /** Kills the command's process group (the caller went away). */
  cancel(): void;
  /** Stops taking output (the command blocks writing once a window of it is in flight) until `resume()`. */
  pause(): void;
  resume(): void;
}

export interface ExecServiceOptions {
  jobs: JobsService;
  live?: LiveSandboxes;
  log: Logger;
  maxBufferBytes?: number;
}

/**
 * Runs commands in persistent sandboxes through the guest agent (`/bin/bash -c`), waking a frozen
 * or sleeping job first and holding its attachment until the command ended. Shared by the exec
 * API; the SSH gateway and the web terminal attach through `attach()` the same way.
 */
export class ExecService {
  readonly maxBufferBytes: number;

  constructor(private readonly o: ExecServiceOptions) {
    this.maxBufferBytes = o.maxBufferBytes ?? DEFAULT_EXEC_MAX_BUFFER_BYTES;
  }

  /** True when the server has persistent sandboxes to attach to. */
  get available(): boolean {
    return this.o.live !== undefined;
  }

  /**
   * The user's job `ref`, attached for `purpose`. JOB_NOT_FOUND says "no job found", JOB_NOT_RUNNING
   * "not running", in those words: Mags clients retry on them.
   */
  async attach(user: User, ref: string, purpose: AttachPurpose, signal?: AbortSignal): Promise<LiveAttachment> {
    const live = this.o.live;
    if (!live) throw new AppError('FEATURE_NOT_AVAILABLE', `${purpose} needs persistent sandboxes, which this server does not run`);
    return attachJob(live, await this.jobOf(user, ref), purpose, signal);
  }

  /** The user's job `ref`; JOB_NOT_FOUND with the words "no job found". */
  async jobOf(user: User, ref: string): Promise<Job> {
    try {
      return await this.o.jobs.get(user, ref);
    } catch (err) {
      if (isAppError(err) && err.code === 'JOB_NOT_FOUND') {
        throw new AppError('JOB_NOT_FOUND', `no job found with request id, name or workspace id "${ref.slice(0, 200)}"`, err.hint);
      }
      throw err;
    }
  }

  /** Starts `cmd` in the job's sandbox; `onData` gets raw output chunks as they arrive. */
  async start(user: User, ref: string, cmd: ExecCommand, onData: (stream: OutputStream, data: Buffer) => void, signal?: AbortSignal): Promise<RunningExec> {
    const timeoutSeconds = cmd.timeoutSeconds ?? DEFAULT_EXEC_TIMEOUT_SECONDS;
    const att = await this.attach(user, ref, 'exec', signal);
    const t0 = Date.now();
    let proc: SandboxProcess;
    try {
      const spawn = att.sandbox.spawn?.bind(att.sandbox);
      if (!spawn) throw new AppError('FEATURE_NOT_AVAILABLE', 'exec needs a runtime driver that can spawn processes');
      const stdin = cmd.stdin !== undefined;
      proc = spawn({ argv: ['/bin/bash', '-c', cmd.command], env: cmd.env, cwd: cmd.cwd, stdin }, onData);
      if (stdin) {
        if (cmd.stdin) proc.write(cmd.stdin);
        proc.closeStdin();
      }
    } catch (err) {
      att.release();
      throw err;
    }
    const log = this.o.log.child({ jobId: att.job.request_id });
    let timedOut = false;
    const kill = () => proc.kill(SIGKILL);
    const timer = setTimeout(() => {
      timedOut = true;
      log.info({ timeoutSeconds }, 'exec timed out; killing its process group');
      kill();
    }, timeoutSeconds * 1000);
    const ended = proc.exited
      .then((exit): ExecEnd => ({ ...exitCodeOf(exit, timedOut), durationMs: Date.now() - t0 }))
      .finally(() => {
        clearTimeout(timer);
        att.release();
      });
    return { job: att.job, ended, cancel: kill, pause: () => proc.pause?.(), resume: () => proc.resume?.() };
  }

  /**
   * Runs `cmd` to its end and answers its output, each stream capped at `maxBufferBytes`. It never
   * pauses the command: past the cap, output is read and dropped, so the command runs to its end.
   */
  async run(user: User, ref: string, cmd: ExecCommand, signal?: AbortSignal): Promise<ExecBuffered> {
    const out = new CappedText(this.maxBufferBytes);
    const err = new CappedText(this.maxBufferBytes);
    const running = await this.start(user, ref, cmd, (stream, data) => (stream === 'stdout' ? out : err).push(data), signal);
    const onAbort = () => running.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const end = await running.ended;
      return { ...end, output: out.text(), stderr: err.text(), truncated: out.truncated || err.truncated };
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

const SIGKILL = 9;

/** Attaches to a job through the lifecycle manager, answering non-persistent jobs in words Mags clients match. */
export async function attachJob(live: LiveSandboxes, job: Job, purpose: AttachPurpose, signal?: AbortSignal): Promise<LiveAttachment> {
  if (!job.persistent) {
    throw new AppError('JOB_NOT_RUNNING', `job ${job.request_id} is not running as a persistent sandbox`, 'Start one with `mags new <name>` or submit with "persistent": true.');
  }
  try {
    return await live.attach(job, purpose, { signal });
  } catch (err) {
    if (isAppError(err) && err.code === 'JOB_NOT_RUNNING' && !/not running/i.test(err.message)) {
      throw new AppError('JOB_NOT_RUNNING', `job ${job.request_id} is not running (status ${job.status}): ${err.message}`, err.hint);
    }
    throw err;
  }
}

function exitCodeOf(exit: ProcessExit, timedOut: boolean): Omit<ExecEnd, 'durationMs'> {
  if (timedOut) return { exitCode: EXEC_TIMEOUT_EXIT_CODE, timedOut, signal: exit.signal };
  if (exit.code !== null) return { exitCode: exit.code, timedOut, signal: null };
  if (exit.signal !== null) return { exitCode: 128 + exit.signal, timedOut, signal: exit.signal };
  throw new AppError('SANDBOX_FAILED', 'the sandbox went away while the command ran');
}

/** UTF-8 text of a stream up to a byte cap (decoded as it arrives, so characters are never split). */
export class CappedText {
  private readonly decoder = new StringDecoder('utf8');
  private parts: string[] = [];
  private bytes = 0;
  truncated = false;

  constructor(private readonly cap: number) {}

  push(data: Buffer): void {
    if (this.bytes >= this.cap) {
      this.truncated = true;
      return;
    }
    const room = this.cap - this.bytes;
    const take = data.length > room ? data.subarray(0, room) : data;
    if (take !== data) this.truncated = true;
    this.bytes += take.length;
    this.parts.push(this.decoder.write(take));
  }

  text(): string {
    this.parts.push(this.decoder.end());
    const s = this.parts.join('');
    this.parts = [s];
    return s;
  }
}
