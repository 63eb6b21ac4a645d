import type { LogStream } from '@mags/shared';
import { JobFeed, type FeedStop, type OutputEvent } from './job-feed.js';
import type { JobLogs } from './job-logs.js';

/** Bytes of one stream handed out at once. */
export type RawPart = { stream: LogStream; data: Buffer };

/** What `RawFeed.next()` hands out: bytes of a stream, the end, or why there is nothing more. */
export type RawItem = { type: 'data'; parts: RawPart[] } | FeedStop;

/** Chunks read at once. */
const PAGE_CHUNKS = 16;

/**
 * One reader's pull-based view of a job's raw output bytes (one stream, or every stream in the
 * order they were read). A slow consumer costs one page of chunks; the position is (chunk, bytes
 * of it taken), as the newest chunk may still grow. Without `follow` it ends with `eof` once it has
 * handed out what exists; with `follow` it waits for more and ends with `end` when the job ends.
 */
export class RawFeed extends JobFeed<RawPart> {
  private chunk = 0;
  private taken = 0;

  constructor(
    logs: JobLogs,
    jobId: string,
    private readonly opts: { stream?: LogStream; follow: boolean },
  ) {
    super(logs, jobId, opts.follow);
  }

  async next(): Promise<RawItem> {
    const s = await this.step();
    return s.type === 'page' ? { type: 'data', parts: s.page } : s;
  }

  protected async take(): Promise<RawPart[]> {
    const from = this.chunk > 0 ? this.chunk - 1 : 0;
    const chunks = await this.logs.readChunks(this.jobId, from, PAGE_CHUNKS, this.opts.stream);
    const parts: RawPart[] = [];
    for (const c of chunks) {
      const skip = c.chunk === this.chunk ? this.taken : 0;
      if (c.chunk < this.chunk) continue;
      if (c.data.length > skip) parts.push({ stream: c.stream, data: c.data.subarray(skip) });
      this.chunk = c.chunk;
      this.taken = c.data.length;
    }
    return parts;
  }

  /** Raw writes wake the reader; lines are the line feed's. */
  protected onOutput(e: OutputEvent): boolean {
    return e.type === 'data';
  }
}
