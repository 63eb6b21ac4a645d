import type { LogLine } from '../storage/logs/store.js';
import { outcomeOf, type JobEvent, type JobLogs, type JobOutcome } from './job-logs.js';

/** How a job's output ended, as its followers are told. */
export type FeedEnd = JobOutcome;

/** What `LogFeed.next()` hands out: the next lines, the end, or why there is nothing more. */
export type FeedItem =
  | { type: 'lines'; lines: LogLine[] }
  | ({ type: 'end' } & FeedEnd)
  | { type: 'shutdown' }
  | { type: 'closed' };

export interface LogFeedOptions {
  /** Most lines handed out (and read from the store) at once (default 256). */
  pageLines?: number;
  /**
   * Most bytes of live lines held while the follower is busy (default 256 KiB); beyond that the
   * buffer is dropped and the follower catches up from the store.
   */
  bufferBytes?: number;
}

/**
 * One follower's pull-based view of a job's output. The consumer asks for the next page only when
 * it can take it, so a slow consumer costs at most one page plus a bounded live buffer. Lines come
 * from the live feed while the follower keeps up and from the store (which also sees lines not yet
 * written) when it fell behind; each line once, in seq order, then one end.
 */
export class LogFeed {
  private last: number;
  private live: LogLine[] = [];
  private liveBytes = 0;
  private ended: FeedEnd | undefined;
  private shuttingDown = false;
  private closed = false;
  /** Set by every event; tells `next()` that a wait would miss something. */
  private dirty = false;
  private wake: (() => void) | undefined;
  private onShutdownFn: (() => void) | undefined;
  private readonly unsubscribe: () => void;
  private readonly pageLines: number;
  private readonly bufferBytes: number;

  constructor(
    private readonly logs: JobLogs,
    /** The job followed (its request id). */
    readonly jobId: string,
    afterSeq: number,
    opts: LogFeedOptions = {},
  ) {
    this.last = afterSeq;
    this.pageLines = opts.pageLines ?? 256;
    this.bufferBytes = opts.bufferBytes ?? 256 * 1024;
    this.unsubscribe = logs.subscribe(jobId, (e) => this.onEvent(e));
  }

  /** The seq of the last line handed out (the position to resume after). */
  get position(): number {
    return this.last;
  }

  /** Records that the job already ended (read from its stored status after subscribing). */
  endWith(end: FeedEnd): void {
    this.ended ??= end;
    this.notify();
  }

  /** Calls `fn` as soon as the server shuts down, also while the consumer is busy elsewhere. */
  onShutdown(fn: () => void): void {
    this.onShutdownFn = fn;
  }

  /** The next lines (at most a page), or the end; waits while the follower is caught up. */
  async next(): Promise<FeedItem> {
    for (;;) {
      if (this.closed) return { type: 'closed' };
      if (this.shuttingDown) {
        this.close();
        return { type: 'shutdown' };
      }
      this.dirty = false;
      const lines = await this.take();
      if (this.closed) return { type: 'closed' };
      if (lines.length > 0) {
        this.last = lines[lines.length - 1]!.seq;
        return { type: 'lines', lines };
      }
      if (this.ended) {
        const end = this.ended;
        this.close();
        return { type: 'end', ...end };
      }
      if (!this.dirty) await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Stops following: drops the subscription and wakes a pending `next()`. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.live = [];
    this.liveBytes = 0;
    this.notify();
  }

  private onEvent(e: JobEvent): void {
    if (e.type === 'data') return;
    if (e.type === 'log') {
      if (e.line.seq <= this.last) return;
      const bytes = lineBytes(e.line);
      if (this.liveBytes + bytes > this.bufferBytes) {
        // Too far behind to hold: the store has these lines.
        this.live = [];
        this.liveBytes = 0;
      }
      this.live.push(e.line);
      this.liveBytes += bytes;
    } else if (e.type === 'end') {
      this.ended ??= outcomeOf(e);
    } else {
      this.shuttingDown = true;
      this.onShutdownFn?.();
    }
    this.notify();
  }

  private notify(): void {
    this.dirty = true;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Live lines when they continue right after the last one handed out, else a page from the store. */
  private async take(): Promise<LogLine[]> {
    let skip = 0;
    while (skip < this.live.length && this.live[skip]!.seq <= this.last) skip++;
    if (skip > 0) this.dropLive(skip);
    if (this.live.length > 0 && this.live[0]!.seq === this.last + 1) {
      let n = 1;
      while (n < this.live.length && n < this.pageLines && this.live[n]!.seq === this.live[n - 1]!.seq + 1) n++;
      return this.dropLive(n);
    }
    return this.logs.read(this.jobId, this.last, this.pageLines);
  }

  private dropLive(n: number): LogLine[] {
    const taken = this.live.splice(0, n);
    for (const l of taken) this.liveBytes -= lineBytes(l);
    return taken;
  }
}

/** What a buffered line costs, roughly: its text plus the record around it. */
function lineBytes(l: LogLine): number {
  return l.message.length + 64;
}
