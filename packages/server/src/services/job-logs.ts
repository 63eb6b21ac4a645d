import type { EndReason, JobStatus, LogStream } from '@mags/shared';
import type { Logger } from 'pino';
import type { LogLine, LogStore } from '../storage/logs/store.js';

/** How a job ended (or went to sleep), as its followers are told: the status fields of its row. */
export interface JobOutcome {
  status: JobStatus;
  exit_code: number | null;
  end_reason: EndReason | null;
  error_message: string | null;
}

/** The outcome fields of a stored job. */
export function outcomeOf(job: JobOutcome): JobOutcome {
  return { status: job.status, exit_code: job.exit_code, end_reason: job.end_reason, error_message: job.error_message };
}

/** What followers of a job's output receive: each line, then one `end`. */
export type JobEvent =
  | { type: 'log'; line: LogLine }
  | ({ type: 'end' } & JobOutcome)
  | { type: 'shutdown' };

export type JobEventListener = (event: JobEvent) => void;

export interface JobLogsOptions {
  /** Longest a line waits before it is written (default 25 ms). */
  flushIntervalMs?: number;
  /** Lines that trigger a write at once (default 500). */
  flushLines?: number;
}

/**
 * Job output: numbers each line (seq), announces it to live followers at once (in-memory pub/sub)
 * and writes lines to the store in batches (one transaction every ~25 ms or 500 lines), so an
 * output flood costs few database writes. A batch the store refuses is retried per job and per line,
 * so one bad line never costs other lines (see `writeIsolated`). Reads merge stored and
 * not-yet-written lines, so a reader never misses a line that a follower already saw.
 */
export class JobLogs {
  private readonly nextSeq = new Map<string, number>();
  private readonly subscribers = new Map<string, Set<JobEventListener>>();
  private pending: LogLine[] = [];
  private inflight: LogLine[] = [];
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly flushIntervalMs: number;
  private readonly flushLines: number;

  constructor(
    private readonly logStore: LogStore,
    private readonly log: Logger,
    opts: JobLogsOptions = {},
  ) {
    this.flushIntervalMs = opts.flushIntervalMs ?? 25;
    this.flushLines = opts.flushLines ?? 500;
  }

  /** Prepares numbering for a job that is about to produce output (continues after stored lines). */
  async open(jobId: string): Promise<void> {
    if (this.nextSeq.has(jobId)) return;
    const max = await this.logStore.maxSeq(jobId);
    const buffered = [...this.inflight, ...this.pending].filter((l) => l.job_id === jobId).reduce((m, l) => Math.max(m, l.seq), 0);
    this.nextSeq.set(jobId, Math.max(max, buffered) + 1);
  }

  /** Records one line: numbered, announced to followers now, written with the next batch. */
  append(jobId: string, stream: LogStream, message: string, at: Date = new Date()): LogLine {
    const seq = this.nextSeq.get(jobId) ?? 1;
    this.nextSeq.set(jobId, seq + 1);
    const line: LogLine = { job_id: jobId, seq, timestamp: at.toISOString(), stream, message };
    this.pending.push(line);
    this.publish(jobId, { type: 'log', line });
    if (this.pending.length >= this.flushLines) {
      void this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.flushIntervalMs);
      this.timer.unref();
    }
    return line;
  }

  /** Writes every buffered line; resolves when they are in the store. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.chain = this.chain.then(() => this.writeBatch());
    return this.chain;
  }

  private async writeBatch(): Promise<void> {
    if (this.pending.length === 0) return;
    this.inflight = this.pending;
    this.pending = [];
    try {
      await this.writeIsolated(this.inflight);
    } finally {
      this.inflight = [];
    }
  }

  /**
   * Stores a batch so that one bad line costs only itself: when the batch fails it is retried per
   * job, a job's lines that still fail are retried one by one, and a line that cannot be stored on
   * its own is replaced by a `system` marker line with the same seq (and logged). When even the
   * marker cannot be stored the database is refusing writes: the rest of that job's lines are
   * logged as lost instead of being retried one by one.
   */
  private async writeIsolated(lines: LogLine[]): Promise<void> {
    try {
      await this.logStore.append(lines);
      return;
    } catch (err) {
      this.log.warn({ err, lines: lines.length }, 'a batch of job output lines could not be stored; retrying per job');
    }
    const byJob = new Map<string, LogLine[]>();
    for (const l of lines) {
      const group = byJob.get(l.job_id);
      if (group) group.push(l);
      else byJob.set(l.job_id, [l]);
    }
    for (const [jobId, group] of byJob) {
      if (byJob.size > 1) {
        try {
          await this.logStore.append(group);
          continue;
        } catch (err) {
          this.log.warn({ err, jobId, lines: group.length }, "a job's output lines could not be stored; retrying line by line");
        }
      }
      await this.storeOneByOne(jobId, group);
    }
  }

  private async storeOneByOne(jobId: string, lines: LogLine[]): Promise<void> {
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      try {
        await this.logStore.append([line]);
        continue;
      } catch (err) {
        this.log.error({ err, jobId, seq: line.seq, bytes: Buffer.byteLength(line.message, 'utf8') }, 'a job output line could not be stored; storing a marker line in its place');
      }
      const marker: LogLine = { ...line, stream: 'system', message: unstorableMarker(line) };
      try {
        await this.logStore.append([marker]);
      } catch (err) {
        this.log.error({ err, jobId, fromSeq: line.seq, lost: lines.length - i }, 'job output lines could not be stored; they are lost');
        return;
      }
    }
  }

  /** Lines of a job with seq > afterSeq (stored and buffered), in order, at most `limit`. */
  async read(jobId: string, afterSeq: number, limit: number): Promise<LogLine[]> {
    const buffered = [...this.inflight, ...this.pending].filter((l) => l.job_id === jobId && l.seq > afterSeq);
    const stored = await this.logStore.read(jobId, afterSeq, limit);
    if (buffered.length === 0) return stored;
    const bySeq = new Map<number, LogLine>();
    for (const l of stored) bySeq.set(l.seq, l);
    // Lines may have moved from the buffer to the store between the two reads: take both. Only the
    // buffer as it was before the store read: lines buffered later can sit after ones that were
    // written meanwhile and so are in neither read, and a follower must never skip a line.
    for (const l of buffered) bySeq.set(l.seq, l);
    return [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(0, limit);
  }

  /** Follows a job's events; returns the unsubscribe function. */
  subscribe(jobId: string, listener: JobEventListener): () => void {
    let set = this.subscribers.get(jobId);
    if (!set) {
      set = new Set();
      this.subscribers.set(jobId, set);
    }
    set.add(listener);
    return () => {
      const s = this.subscribers.get(jobId);
      if (!s) return;
      s.delete(listener);
      if (s.size === 0) this.subscribers.delete(jobId);
    };
  }

  /** Announces that a job's output ended (after its final status is stored). */
  end(jobId: string, outcome: JobOutcome): void {
    this.nextSeq.delete(jobId);
    this.publish(jobId, { type: 'end', ...outcomeOf(outcome) });
  }

  /** Tells every follower that the server is shutting down (they close their streams). */
  shutdownFollowers(): void {
    for (const [jobId] of this.subscribers) this.publish(jobId, { type: 'shutdown' });
  }

  followerCount(): number {
    let n = 0;
    for (const s of this.subscribers.values()) n += s.size;
    return n;
  }

  private publish(jobId: string, event: JobEvent): void {
    const set = this.subscribers.get(jobId);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(event);
      } catch (err) {
        this.log.warn({ err, jobId }, 'a log follower failed');
      }
    }
  }
}

/** What a reader sees in place of a line the store refused (the server log has the reason). */
export function unstorableMarker(line: LogLine): string {
  return `[output line ${line.seq} (${line.stream}, ${Buffer.byteLength(line.message, 'utf8')} bytes) could not be stored; the server log has the reason]`;
}
