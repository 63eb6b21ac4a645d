import type { LogStream } from '@mags/shared';
import { outcomeOf, type JobEvent, type JobLogs, type JobOutcome } from './job-logs.js';

/** What `RawFeed.next()` hands out: bytes of a stream, the end, or why there is nothing more. */
export type RawItem =
  | { type: 'data'; parts: Array<{ stream: LogStream; data: Buffer }> }
  | ({ type: 'end' } & JobOutcome)
  | { type: 'eof' }
  | { type: 'shutdown' }
  | { type: 'closed' };

/** Chunks read at once. */
const PAGE_CHUNKS = 16;

/**
 * One reader's pull-based view of a job's raw output bytes (one stream, or every stream in the
 * order they were read). The consumer asks for more only when it can take it, so a slow one costs
 * one page of chunks; the position is (chunk, bytes of it taken), as the newest chunk may still grow.
 * Without `follow` it ends with `eof` once it has handed out what exists; with `follow` it waits
 * for more and ends with `end` when the job ends.
 */
export class RawFeed {
  private chunk = 0;
  private taken = 0;
  private ended: JobOutcome | undefined;
  private shuttingDown = false;
  private closed = false;
  private dirty = false;
  private wake: (() => void) | undefined;
  private onShutdownFn: (() => void) | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly logs: JobLogs,
    readonly jobId: string,
    private readonly opts: { stream?: LogStream; follow: boolean },
  ) {
    this.unsubscribe = logs.subscribe(jobId, (e) => this.onEvent(e));
  }

  /** Whether the feed waits for more output (follow). */
  get following(): boolean {
    return this.opts.follow;
  }

  /** Records that the job already ended (read from its stored status after subscribing). */
  endWith(end: JobOutcome): void {
    this.ended ??= end;
    this.notify();
  }

  /** Calls `fn` as soon as the server shuts down. */
  onShutdown(fn: () => void): void {
    this.onShutdownFn = fn;
  }

  async next(): Promise<RawItem> {
    for (;;) {
      if (this.closed) return { type: 'closed' };
      if (this.shuttingDown) {
        this.close();
        return { type: 'shutdown' };
      }
      this.dirty = false;
      const ended = this.ended;
      const parts = await this.take();
      if (this.closed) return { type: 'closed' };
      if (parts.length > 0) return { type: 'data', parts };
      if (!this.opts.follow) {
        this.close();
        return { type: 'eof' };
      }
      // Only an end seen before the read: output written just before it is then in the read.
      if (ended) {
        this.close();
        return { type: 'end', ...ended };
      }
      if (!this.dirty) await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.notify();
  }

  private async take(): Promise<Array<{ stream: LogStream; data: Buffer }>> {
    const from = this.chunk > 0 ? this.chunk - 1 : 0;
    const chunks = await this.logs.readChunks(this.jobId, from, PAGE_CHUNKS, this.opts.stream);
    const parts: Array<{ stream: LogStream; data: Buffer }> = [];
    for (const c of chunks) {
      const skip = c.chunk === this.chunk ? this.taken : 0;
      if (c.chunk < this.chunk) continue;
      if (c.data.length > skip) parts.push({ stream: c.stream, data: c.data.subarray(skip) });
      this.chunk = c.chunk;
      this.taken = c.data.length;
    }
    return parts;
  }

  private onEvent(e: JobEvent): void {
    if (e.type === 'end') this.ended ??= outcomeOf(e);
    else if (e.type === 'shutdown') {
      this.shuttingDown = true;
      this.onShutdownFn?.();
    } else if (e.type === 'log') return;
    this.notify();
  }

  private notify(): void {
    this.dirty = true;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
