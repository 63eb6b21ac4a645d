import { AppError } from './errors.js';

/** How long a job submitted with `stdin: true` waits, once running, for its upload before it reads EOF. */
export const STDIN_WAIT_MS = 60_000;

interface Entry {
  /** Set once the upload arrived. */
  body?: AsyncIterable<Buffer>;
  arrived: Promise<void>;
  arrive: () => void;
  /** The scheduler is reading (or waiting for) the job's stdin. */
  taken: boolean;
  /** The job's stdin reached EOF without an upload (none came in time): later uploads are refused. */
  closed: boolean;
  bytes: number;
  /** The terminal the script runs on (jobs submitted with `tty`), its latest size. */
  tty?: { cols: number; rows: number };
  /** Steers the running script (set once it started). */
  control?: { resize(cols: number, rows: number): void };
  /** Settles the upload's request: the bytes the script's stdin took. */
  settle?: (r: { bytes: number } | { error: AppError }) => void;
  /** Ends the wait for an upload (the job ended). */
  stopWaiting?: () => void;
}

/**
 * The stdin of jobs submitted with `stdin: true`: the upload (`PUT .../stdin`, a streamed request
 * body) meets the running script here. The scheduler pulls the body chunk by chunk as the guest
 * agent's stdin window allows, so a 100 MB stdin is never held whole; the upload's request ends
 * when the script's stdin reached EOF (or the job ended).
 */
export class StdinHub {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly waitMs = STDIN_WAIT_MS) {}

  /** Records that a job reads its stdin from an upload (at submit), optionally on a terminal of this size. */
  expect(jobId: string, tty?: { cols: number; rows: number }): void {
    let arrive!: () => void;
    const arrived = new Promise<void>((r) => (arrive = r));
    this.entries.set(jobId, { arrived, arrive, taken: false, closed: false, bytes: 0, tty: tty ? { ...tty } : undefined });
  }

  /** The terminal size of a job submitted with `tty` (its latest), else undefined. */
  ttyOf(jobId: string): { cols: number; rows: number } | undefined {
    return this.entries.get(jobId)?.tty;
  }

  /** The running script's steering calls (from the runtime, once it started). */
  started(jobId: string, control: { resize(cols: number, rows: number): void }): void {
    const e = this.entries.get(jobId);
    if (!e) return;
    e.control = control;
    if (e.tty) control.resize(e.tty.cols, e.tty.rows);
  }

  /** New terminal size of a job with a terminal (applied now when it runs, else at its start). */
  resize(jobId: string, cols: number, rows: number): void {
    const e = this.entries.get(jobId);
    if (!e?.tty) throw new AppError('INVALID_STATE', 'This job has no terminal (or it already ended)', 'Submit it with "tty": {"cols": 80, "rows": 24}.');
    e.tty = { cols, rows };
    e.control?.resize(cols, rows);
  }

  wants(jobId: string): boolean {
    return this.entries.has(jobId);
  }

  /**
   * The upload of a job's stdin; resolves with the bytes the script's stdin took once it reached
   * EOF or the job ended. Refused when the job was not submitted with `stdin: true`, or its stdin
   * was already given.
   */
  provide(jobId: string, body: AsyncIterable<Buffer>): Promise<{ bytes: number }> {
    const e = this.entries.get(jobId);
    if (!e) throw new AppError('INVALID_STATE', 'This job does not read stdin from an upload (or it already ended)', 'Submit it with "stdin": true.');
    if (e.body) throw new AppError('CONFLICT', "This job's stdin was already given", 'Each job takes one stdin upload.');
    if (e.closed) throw new AppError('CONFLICT', `This job's stdin already reached EOF: no upload came within ${Math.round(this.waitMs / 1000)} s of its start`, 'Send the stdin right after submitting the job.');
    e.body = body;
    const done = new Promise<{ bytes: number }>((resolve, reject) => {
      e.settle = (r) => ('error' in r ? reject(r.error) : resolve(r));
    });
    e.arrive();
    return done;
  }

  /**
   * The script's stdin, for the scheduler: waits up to the wait limit (or `signal`) for the upload,
   * then yields its bytes; ends (EOF) at the upload's end, or at once when none came in time.
   */
  async *take(jobId: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
    const e = this.entries.get(jobId);
    if (!e || e.taken) return;
    e.taken = true;
    let failure: unknown = null;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.waitMs);
      // drop() (the job ended) ends the wait at once, so it never outlives the job.
      e.stopWaiting = resolve;
      signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    try {
      await Promise.race([e.arrived, gaveUp]);
      if (!e.body || signal?.aborted) {
        e.closed = true;
        return;
      }
      try {
        for await (const chunk of e.body) {
          e.bytes += chunk.length;
          yield chunk;
        }
      } catch (err) {
        // The upload failed mid-body: the script reads EOF, the uploader (when still there) hears why.
        failure = isAborted(err) ? null : err;
      }
    } finally {
      clearTimeout(timer);
      if (failure) e.settle?.({ error: new AppError('INTERNAL_ERROR', `reading the stdin upload failed: ${(failure as Error).message}`) });
      else e.settle?.({ bytes: e.bytes });
    }
  }

  /** The job ended: an upload still waiting is answered, and the job forgotten. */
  drop(jobId: string): void {
    const e = this.entries.get(jobId);
    if (!e) return;
    this.entries.delete(jobId);
    e.stopWaiting?.();
    if (!e.taken) e.settle?.({ error: new AppError('JOB_NOT_RUNNING', 'The job ended before it read its stdin') });
    else e.settle?.({ bytes: e.bytes });
  }
}

/** A request body that ended because its client disconnected. */
function isAborted(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as Error | null)?.message === 'aborted';
}
