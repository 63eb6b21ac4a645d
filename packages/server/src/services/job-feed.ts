import { outcomeOf, type JobEvent, type JobLogs, type JobOutcome } from './job-logs.js';

/** Why a feed hands out nothing more: the job ended, everything stored was read (no follow), the server shuts down, or the feed was closed. */
export type FeedStop = ({ type: 'end' } & JobOutcome) | { type: 'eof' } | { type: 'shutdown' } | { type: 'closed' };

/** The output events of a job (a line; a wake-up per raw write). */
export type OutputEvent = Extract<JobEvent, { type: 'log' } | { type: 'data' }>;

/**
 * What the job output feeds share (lines: LogFeed; raw bytes: RawFeed): a subscription to the
 * job's events, a pull-based `step()` that hands out the next page or waits for an event, the
 * end of the job, the server's shutdown and `close()`. A consumer asks for more only when it can
 * take it. The end counts only when it was seen before a read that found nothing, so output
 * written just before the job ended is always handed out first.
 */
export abstract class JobFeed<T> {
  private ended: JobOutcome | undefined;
  private shuttingDown = false;
  private closed = false;
  /** Set by every event that matters; tells `step()` that a wait would miss something. */
  private dirty = false;
  private wake: (() => void) | undefined;
  private onShutdownFn: (() => void) | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    protected readonly logs: JobLogs,
    /** The job followed (its request id). */
    readonly jobId: string,
    private readonly follow: boolean,
  ) {
    this.unsubscribe = logs.subscribe(jobId, (e) => this.onEvent(e));
  }

  /** Whether the feed waits for more output (follow). */
  get following(): boolean {
    return this.follow;
  }

  /** Records that the job already ended (read from its stored status after subscribing). */
  endWith(end: JobOutcome): void {
    this.ended ??= end;
    this.notify();
  }

  /** Calls `fn` as soon as the server shuts down, also while the consumer is busy elsewhere. */
  onShutdown(fn: () => void): void {
    this.onShutdownFn = fn;
  }

  /** Stops the feed: drops the subscription and wakes a pending `step()`. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.dropBuffered();
    this.notify();
  }

  /** The next page (never empty), or why there is nothing more; waits while a follower is caught up. */
  protected async step(): Promise<{ type: 'page'; page: T[] } | FeedStop> {
    for (;;) {
      if (this.closed) return { type: 'closed' };
      if (this.shuttingDown) {
        this.close();
        return { type: 'shutdown' };
      }
      this.dirty = false;
      const ended = this.ended;
      const page = await this.take();
      if (this.closed) return { type: 'closed' };
      if (page.length > 0) return { type: 'page', page };
      if (!this.follow) {
        this.close();
        return { type: 'eof' };
      }
      if (ended) {
        this.close();
        return { type: 'end', ...ended };
      }
      if (!this.dirty) await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** The next page of output after what was handed out (empty: nothing new yet). */
  protected abstract take(): Promise<T[]>;

  /** An output event; answers whether it may have made more output readable. */
  protected abstract onOutput(e: OutputEvent): boolean;

  /** Frees what the feed holds beyond its position (on close). */
  protected dropBuffered(): void {}

  private onEvent(e: JobEvent): void {
    if (e.type === 'end') this.ended ??= outcomeOf(e);
    else if (e.type === 'shutdown') {
      this.shuttingDown = true;
      this.onShutdownFn?.();
    } else if (!this.onOutput(e)) return;
    this.notify();
  }

  private notify(): void {
    this.dirty = true;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
