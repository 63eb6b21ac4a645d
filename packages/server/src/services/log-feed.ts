import type { LogLine } from '../storage/logs/store.js';
import { JobFeed, type FeedStop, type OutputEvent } from './job-feed.js';
import type { JobLogs, JobOutcome } from './job-logs.js';

/** How a job's output ended, as its followers are told. */
export type FeedEnd = JobOutcome;

/** What `LogFeed.next()` hands out: the next lines, the end, or why there is nothing more. */
export type FeedItem = { type: 'lines'; lines: LogLine[] } | FeedStop;

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
 * One follower's pull-based view of a job's output lines. A slow consumer costs at most one page
 * plus a bounded live buffer. Lines come from the live feed while the follower keeps up and from
 * the store (which also sees lines not yet written) when it fell behind; each line once, in seq
 * order, then one end.
 */
export class LogFeed extends JobFeed<LogLine> {
  private last: number;
  private live: LogLine[] = [];
  private liveBytes = 0;
  private readonly pageLines: number;
  private readonly bufferBytes: number;

  constructor(logs: JobLogs, jobId: string, afterSeq: number, opts: LogFeedOptions = {}) {
    super(logs, jobId, true);
    this.last = afterSeq;
    this.pageLines = opts.pageLines ?? 256;
    this.bufferBytes = opts.bufferBytes ?? 256 * 1024;
  }

  /** The seq of the last line handed out (the position to resume after). */
  get position(): number {
    return this.last;
  }

  /** The next lines (at most a page), or the end; waits while the follower is caught up. */
  async next(): Promise<FeedItem> {
    const s = await this.step();
    if (s.type !== 'page') return s;
    this.last = s.page[s.page.length - 1]!.seq;
    return { type: 'lines', lines: s.page };
  }

  protected onOutput(e: OutputEvent): boolean {
    if (e.type === 'data' || e.line.seq <= this.last) return false;
    const bytes = lineBytes(e.line);
    if (this.liveBytes + bytes > this.bufferBytes) {
      // Too far behind to hold: the store has these lines.
      this.live = [];
      this.liveBytes = 0;
    }
    this.live.push(e.line);
    this.liveBytes += bytes;
    return true;
  }

  protected override dropBuffered(): void {
    this.live = [];
    this.liveBytes = 0;
  }

  /** Live lines when they continue right after the last one handed out, else a page from the store. */
  protected async take(): Promise<LogLine[]> {
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
