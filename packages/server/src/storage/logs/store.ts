import type { LogStream } from '@mags/shared';

/** One output line of a job, as the Mags logs answer and the SSE stream carry it (derived from chunks). */
export interface LogLine {
  job_id: string;
  /** Per-job increasing number, from 1. */
  seq: number;
  /** ISO 8601 time the chunk holding the line's end was read. */
  timestamp: string;
  stream: LogStream;
  /** The line's bytes without the newline, decoded as UTF-8 (malformed bytes read as U+FFFD). */
  message: string;
}

/**
 * A block of raw output bytes of one stream of a job: the stored form of job output. A job's
 * chunks are numbered in the order they were read (across streams); the bytes of one stream are
 * the concatenation of its chunks. Lines are cut from the bytes by `nextLine` (lines.ts): every
 * line whose end lies in the chunk has a seq in `first_seq..last_seq` (none when last_seq < first_seq).
 */
export interface LogChunk {
  job_id: string;
  /** Per-job increasing number, from 1. */
  chunk: number;
  stream: LogStream;
  /** ISO 8601 time the chunk's first bytes were read. */
  timestamp: string;
  /** Offset of `data` in the bytes of its stream. */
  byte_offset: number;
  /** Stream offset where the first line ending in this chunk begins (<= byte_offset when it began in an earlier chunk). */
  line_start: number;
  first_seq: number;
  last_seq: number;
  data: Buffer;
}

/** Where a job's output continues: the next chunk number and seq, and each stream's length. */
export interface LogPosition {
  nextChunk: number;
  nextSeq: number;
  /** Bytes stored per stream. */
  streamBytes: Record<LogStream, number>;
}

/**
 * Job output in chunks. `JobLogs` (services/job-logs.ts) depends on this interface;
 * `KyselyLogStore` keeps chunks in the metadata database and passes the conformance suite
 * (test/store-logs.test.ts) on SQLite and PostgreSQL.
 */
export interface LogStore {
  /** Inserts chunks in one transaction: all of them are stored, or none (e.g. a duplicate chunk number). */
  appendChunks(chunks: readonly LogChunk[]): Promise<void>;
  /** Chunks of a job with a number > afterChunk, in order, at most `limit` (optionally of one stream). */
  readChunks(jobId: string, afterChunk: number, limit: number, stream?: LogStream): Promise<LogChunk[]>;
  /** Lines of a job with seq > afterSeq, in seq order, at most `limit` (cut from the chunks). */
  read(jobId: string, afterSeq: number, limit: number): Promise<LogLine[]>;
  /** Highest seq of a job, 0 when none. */
  maxSeq(jobId: string): Promise<number>;
  /** Where a job's output continues (after a restart of the daemon or a woken persistent job). */
  position(jobId: string): Promise<LogPosition>;
  /** Deletes every chunk of one job; returns the number deleted. */
  deleteJob(jobId: string): Promise<number>;
  /**
   * Deletes the output of jobs that ended (status `completed` or `error`) before `cutoff` (ISO 8601);
   * the job rows stay. Returns the number of chunks deleted.
   */
  deleteEndedBefore(cutoff: string): Promise<number>;
}
