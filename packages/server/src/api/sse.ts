import type { ServerResponse } from 'node:http';

export interface SseWriterOptions {
  /** Milliseconds between keep-alive comments; 0 = none (a raw byte stream has no comments). */
  heartbeatMs: number;
  /** Longest the socket may accept nothing before `send` gives up and the stream counts as stalled. */
  stallMs: number;
}

/**
 * A Server-Sent Events response that respects back-pressure: `send` resolves once the socket can
 * take more (at once when its buffer has room, else on 'drain'), false when the client is gone or
 * read nothing for `stallMs`. So the response never queues more than one write beyond the
 * socket's high-water mark.
 */
export class SseWriter {
  /** True once a `send` gave up because the client read nothing for `stallMs`. */
  stalled = false;
  private closed = false;
  private readonly heartbeat: NodeJS.Timeout | undefined;
  private readonly onCloseFns: Array<() => void> = [];
  /** Settles a `send` waiting for 'drain'. */
  private release: ((more: boolean) => void) | undefined;

  constructor(
    private readonly raw: ServerResponse,
    private readonly opts: SseWriterOptions,
  ) {
    this.heartbeat = opts.heartbeatMs > 0
      ? setInterval(() => {
          // A comment only when the socket has room: a ping must not add to a backlog.
          if (!this.closed && !raw.writableNeedDrain) raw.write(': ping\n\n');
        }, opts.heartbeatMs)
      : undefined;
    this.heartbeat?.unref();
    raw.on('close', () => this.markClosed());
    // A client that resets the connection is a normal end of a stream: 'close' follows.
    raw.on('error', () => this.markClosed());
  }

  /** Whether the client went away (or the stream was ended). */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Calls `fn` once when the client disconnects or the stream ends. */
  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.onCloseFns.push(fn);
  }

  /** Writes `text` (or bytes); resolves true when more may be written, false when the stream is over. */
  async send(text: string | Buffer): Promise<boolean> {
    if (this.closed) return false;
    if (this.raw.write(text)) return true;
    return this.drained();
  }

  /**
   * Ends the stream with an optional last event (written even into a full buffer: it is small) and
   * settles a waiting `send`. A client that does not take the rest within `graceMs` (default
   * `stallMs`) is disconnected.
   */
  end(last?: string | Buffer, graceMs = this.opts.stallMs): void {
    if (this.raw.writableEnded) return this.markClosed();
    if (last !== undefined && !this.raw.destroyed) this.raw.write(last);
    this.raw.end();
    if (!this.raw.writableFinished) {
      const kill = setTimeout(() => this.raw.destroy(), graceMs);
      kill.unref();
      this.raw.once('finish', () => clearTimeout(kill));
      this.raw.once('close', () => clearTimeout(kill));
    }
    this.markClosed();
  }

  private drained(): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (more: boolean) => {
        this.release = undefined;
        clearTimeout(timer);
        this.raw.off('drain', onDrain);
        this.raw.off('close', onClose);
        resolve(more && !this.closed);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => {
        this.stalled = true;
        done(false);
      }, this.opts.stallMs);
      this.release = done;
      this.raw.on('drain', onDrain);
      this.raw.on('close', onClose);
    });
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.release?.(false);
    for (const fn of this.onCloseFns.splice(0)) fn();
  }
}
