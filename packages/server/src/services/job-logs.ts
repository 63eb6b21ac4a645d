import type { EndReason, JobStatus, LogStream } from '@mags/shared';
import type { Logger } from 'pino';
import { MAX_LINE_BYTES, nextLine } from '../storage/logs/lines.js';
import type { LogChunk, LogLine, LogStore } from '../storage/logs/store.js';

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

/** What followers of a job's output receive: each line, a wake-up per raw write, then one `end`. */
export type JobEvent =
  | { type: 'log'; line: LogLine }
  | { type: 'data' }
  | ({ type: 'end' } & JobOutcome)
  | { type: 'shutdown' };

export type JobEventListener = (event: JobEvent) => void;

export interface JobLogsOptions {
  /** Longest output waits before it is written (default 50 ms). */
  flushIntervalMs?: number;
  /** Buffered lines that trigger a write at once (default 16384). */
  flushLines?: number;
  /** Largest chunk (default 64 KiB). */
  chunkBytes?: number;
}

/** A chunk still in memory: the open one of a job grows while bytes of its stream keep coming. */
interface PendingChunk extends Omit<LogChunk, 'data'> {
  parts: Buffer[];
  size: number;
}

interface StreamState {
  /** Bytes of the stream so far. */
  offset: number;
  /** Stream offset where the open (incomplete) line begins. */
  lineStart: number;
  /** Bytes of the open line. */
  tail: Buffer[];
  tailBytes: number;
}

interface JobState {
  nextSeq: number;
  nextChunk: number;
  streams: Record<LogStream, StreamState>;
  /** The chunk the next bytes of its stream are added to, until it is full, flushed or another stream writes. */
  open: PendingChunk | null;
}

const STREAMS: readonly LogStream[] = ['stdout', 'stderr', 'system'];

/**
 * Job output: keeps the raw bytes of each stream in chunks (one row per block of up to 64 KiB of
 * one stream, written in one transaction every ~50 ms), cuts lines from them as they arrive
 * (numbered by seq, announced to live followers at once), and answers reads of lines and of raw
 * chunks that merge stored and not-yet-written output, so a reader never misses what a follower saw.
 */
export class JobLogs {
  private readonly jobs = new Map<string, JobState>();
  private readonly subscribers = new Map<string, Set<JobEventListener>>();
  private pending: PendingChunk[] = [];
  private pendingLines: LogLine[] = [];
  private inflight: PendingChunk[] = [];
  private inflightLines: LogLine[] = [];
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly flushIntervalMs: number;
  private readonly flushLines: number;
  private readonly chunkBytes: number;

  constructor(
    private readonly logStore: LogStore,
    private readonly log: Logger,
    opts: JobLogsOptions = {},
  ) {
    this.flushIntervalMs = opts.flushIntervalMs ?? 50;
    this.flushLines = opts.flushLines ?? 16384;
    this.chunkBytes = opts.chunkBytes ?? 64 * 1024;
  }

  /** Prepares a job that is about to produce output (continues after its stored and buffered output). */
  async open(jobId: string): Promise<void> {
    if (this.jobs.has(jobId)) return;
    const pos = await this.logStore.position(jobId);
    if (this.jobs.has(jobId)) return;
    const state: JobState = { nextSeq: pos.nextSeq, nextChunk: pos.nextChunk, open: null, streams: {} as Record<LogStream, StreamState> };
    for (const s of STREAMS) state.streams[s] = { offset: pos.streamBytes[s], lineStart: pos.streamBytes[s], tail: [], tailBytes: 0 };
    for (const c of [...this.inflight, ...this.pending]) {
      if (c.job_id !== jobId) continue;
      state.nextChunk = Math.max(state.nextChunk, c.chunk + 1);
      state.nextSeq = Math.max(state.nextSeq, c.last_seq + 1);
      const st = state.streams[c.stream];
      st.offset = st.lineStart = Math.max(st.offset, c.byte_offset + c.size);
    }
    this.jobs.set(jobId, state);
  }

  /**
   * Records raw output bytes of a stream: kept exactly, lines completed by them numbered and
   * announced now, written with the next batch. Returns the lines completed.
   */
  write(jobId: string, stream: LogStream, data: Buffer, at: Date = new Date()): LogLine[] {
    const state = this.stateOf(jobId);
    const st = state.streams[stream];
    const ts = at.toISOString();
    const lines: LogLine[] = [];
    for (let from = 0; from < data.length; ) {
      let chunk = state.open;
      if (!chunk || chunk.stream !== stream || chunk.size >= this.chunkBytes) chunk = this.newChunk(jobId, state, stream, ts);
      const piece = data.subarray(from, from + (this.chunkBytes - chunk.size));
      from += piece.length;
      chunk.parts.push(piece);
      chunk.size += piece.length;
      st.offset += piece.length;
      this.cutLines(jobId, state, st, stream, piece, false, ts, chunk, lines);
    }
    if (data.length > 0) this.publish(jobId, { type: 'data' });
    this.scheduleFlush();
    return lines;
  }

  /** Records one whole line (a `system` note, or a line of a stream that ends with a newline). */
  append(jobId: string, stream: LogStream, message: string, at: Date = new Date()): LogLine {
    const text = stream === 'system' ? message.replace(/\n/g, ' ') : message;
    const lines = this.write(jobId, stream, Buffer.from(text + '\n', 'utf8'), at);
    return lines[lines.length - 1]!;
  }

  /** The output of a run ended: the open line of each stream, when there is one, becomes a final line. */
  endStreams(jobId: string, at: Date = new Date()): void {
    const state = this.jobs.get(jobId);
    if (!state) return;
    const ts = at.toISOString();
    for (const stream of STREAMS) {
      const st = state.streams[stream];
      if (st.tailBytes === 0) continue;
      let chunk = state.open;
      if (!chunk || chunk.stream !== stream) chunk = this.newChunk(jobId, state, stream, ts);
      const lines: LogLine[] = [];
      this.cutLines(jobId, state, st, stream, Buffer.alloc(0), true, ts, chunk, lines);
    }
    this.scheduleFlush();
  }

  private stateOf(jobId: string): JobState {
    let state = this.jobs.get(jobId);
    if (!state) {
      // Without open() (a note on a job that never ran): numbering starts after what is buffered.
      state = { nextSeq: 1, nextChunk: 1, open: null, streams: {} as Record<LogStream, StreamState> };
      for (const s of STREAMS) state.streams[s] = { offset: 0, lineStart: 0, tail: [], tailBytes: 0 };
      this.jobs.set(jobId, state);
    }
    return state;
  }

  private newChunk(jobId: string, state: JobState, stream: LogStream, ts: string): PendingChunk {
    const st = state.streams[stream];
    const chunk: PendingChunk = {
      job_id: jobId,
      chunk: state.nextChunk++,
      stream,
      timestamp: ts,
      byte_offset: st.offset,
      line_start: st.lineStart,
      first_seq: state.nextSeq,
      last_seq: state.nextSeq - 1,
      parts: [],
      size: 0,
    };
    state.open = chunk;
    this.pending.push(chunk);
    return chunk;
  }

  /** Cuts the lines completed by `piece` (appended to the open line), numbers and announces them. */
  private cutLines(jobId: string, state: JobState, st: StreamState, stream: LogStream, piece: Buffer, final: boolean, ts: string, chunk: PendingChunk, out: LogLine[]): void {
    if (!final && piece.indexOf(10) < 0 && st.tailBytes + piece.length <= MAX_LINE_BYTES) {
      if (piece.length > 0) st.tail.push(piece);
      st.tailBytes += piece.length;
      return;
    }
    const buf = st.tail.length === 0 ? piece : Buffer.concat([...st.tail, piece]);
    let pos = 0;
    for (;;) {
      const cut = nextLine(buf, pos, final);
      if (!cut) break;
      const line: LogLine = { job_id: jobId, seq: state.nextSeq++, timestamp: ts, stream, message: buf.toString('utf8', pos, cut.end) };
      chunk.last_seq = line.seq;
      out.push(line);
      this.pendingLines.push(line);
      this.publish(jobId, { type: 'log', line });
      pos = cut.next;
    }
    const rest = buf.subarray(pos);
    st.tail = rest.length > 0 ? [rest] : [];
    st.tailBytes = rest.length;
    st.lineStart = st.offset - rest.length;
  }

  private scheduleFlush(): void {
    if (this.pendingLines.length >= this.flushLines || this.pending.length >= 16) {
      void this.flush();
    } else if (!this.timer && this.pending.length > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.flushIntervalMs);
      this.timer.unref();
    }
  }

  /** Writes all buffered output; resolves when it is in the store. */
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
    this.inflightLines = this.pendingLines;
    this.pending = [];
    this.pendingLines = [];
    // Written chunks are final: the next bytes of a stream go to a new one.
    for (const state of this.jobs.values()) state.open = null;
    try {
      await this.store(this.inflight.map(materialize));
    } finally {
      this.inflight = [];
      this.inflightLines = [];
    }
  }

  /**
   * Stores a batch; when the batch fails (one job's chunk refused) it is retried per job, so one
   * job's failure costs only that job's output, which is logged as lost with its seq range.
   */
  private async store(chunks: LogChunk[]): Promise<void> {
    try {
      await this.logStore.appendChunks(chunks);
      return;
    } catch (err) {
      this.log.warn({ err, chunks: chunks.length }, 'a batch of job output could not be stored; retrying per job');
    }
    const byJob = new Map<string, LogChunk[]>();
    for (const c of chunks) {
      const group = byJob.get(c.job_id);
      if (group) group.push(c);
      else byJob.set(c.job_id, [c]);
    }
    for (const [jobId, group] of byJob) {
      try {
        await this.logStore.appendChunks(group);
      } catch (err) {
        const bytes = group.reduce((n, c) => n + c.data.length, 0);
        this.log.error({ err, jobId, fromChunk: group[0]!.chunk, fromSeq: group[0]!.first_seq, toSeq: group[group.length - 1]!.last_seq, bytes }, 'job output could not be stored; it is lost');
      }
    }
  }

  /** Lines of a job with seq > afterSeq (stored and buffered), in order, at most `limit`. */
  async read(jobId: string, afterSeq: number, limit: number): Promise<LogLine[]> {
    const buffered = [...this.inflightLines, ...this.pendingLines].filter((l) => l.job_id === jobId && l.seq > afterSeq);
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

  /** Highest seq of a job's lines so far (stored or buffered), 0 when none. */
  async maxSeq(jobId: string): Promise<number> {
    const buffered = [...this.inflightLines, ...this.pendingLines].reduce((m, l) => (l.job_id === jobId ? Math.max(m, l.seq) : m), 0);
    return Math.max(buffered, await this.logStore.maxSeq(jobId));
  }

  /**
   * Raw chunks of a job with a number > afterChunk (stored and buffered), in order, at most
   * `limit`. The last one may still grow (the open chunk): a reader keeps how many of its bytes it took.
   */
  async readChunks(jobId: string, afterChunk: number, limit: number, stream?: LogStream): Promise<LogChunk[]> {
    const keep = (c: PendingChunk) => c.job_id === jobId && c.chunk > afterChunk && (!stream || c.stream === stream);
    const buffered = [...this.inflight, ...this.pending].filter(keep).map(materialize);
    if (buffered.length > 0 && buffered[0]!.chunk === afterChunk + 1 && !stream) return buffered.slice(0, limit);
    const stored = await this.logStore.readChunks(jobId, afterChunk, limit, stream);
    const byChunk = new Map<number, LogChunk>();
    for (const c of stored) byChunk.set(c.chunk, c);
    for (const c of buffered) byChunk.set(c.chunk, c);
    return [...byChunk.values()].sort((a, b) => a.chunk - b.chunk).slice(0, limit);
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
    this.endStreams(jobId);
    this.jobs.delete(jobId);
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

function materialize(c: PendingChunk): LogChunk {
  const { parts, size: _size, ...rest } = c;
  return { ...rest, data: parts.length === 1 ? parts[0]! : Buffer.concat(parts) };
}
