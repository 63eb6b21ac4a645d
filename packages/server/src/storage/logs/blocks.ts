/**
 * A block: consecutive lines of one job (seq first..last, no gaps) in one `job_log_blocks` row. Its
 * `data` is JSON, column by column, so a tiny line costs a few bytes, not a row:
 * `{"t":[<ms since the epoch, then since the previous line>, ...], "s":"oeo...", "m":["...", ...]}`
 * with one stream letter per line (`o` stdout, `e` stderr, `s` system). JSON keeps any JS string
 * exactly (NUL becomes `\u0000`, a lone surrogate `\udXXX`: JSON.stringify escapes both), so the
 * text column never holds NUL or invalid UTF-8 and the lines need no escaping of their own.
 * Timestamps are ISO 8601 with milliseconds (what the log feed writes); any other form is kept
 * verbatim in `x` (line index -> timestamp) so a line always reads back exactly.
 */
import type { LogStream } from '@mags/shared';
import type { LogLine } from './store.js';

/** Most lines in one block. */
export const BLOCK_MAX_LINES = 1000;
/** A block is closed once its messages reach this many UTF-16 units (a bigger line gets a block alone). */
export const BLOCK_MAX_CHARS = 64 * 1024;

const STREAM_CODE: Record<string, string> = { stdout: 'o', stderr: 'e', system: 's' };
const CODE_STREAM: Record<string, LogStream> = { o: 'stdout', e: 'stderr', s: 'system' };
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export interface BlockRow {
  job_id: string;
  first_seq: number;
  last_seq: number;
  data: string;
}

interface BlockData {
  t: number[];
  s: string;
  m: string[];
  x?: Record<string, string>;
}

/** Groups lines into blocks: per job, runs of consecutive seqs, at most BLOCK_MAX_LINES / BLOCK_MAX_CHARS each. */
export function toBlocks(lines: readonly LogLine[]): BlockRow[] {
  const byJob = new Map<string, LogLine[]>();
  for (const l of lines) {
    const list = byJob.get(l.job_id);
    if (list) list.push(l);
    else byJob.set(l.job_id, [l]);
  }
  const out: BlockRow[] = [];
  for (const [jobId, list] of byJob) {
    list.sort((a, b) => a.seq - b.seq);
    let run: LogLine[] = [];
    let chars = 0;
    const close = () => {
      if (run.length) out.push(encode(jobId, run));
      run = [];
      chars = 0;
    };
    for (const l of list) {
      const prev = run.at(-1);
      if (prev && (l.seq !== prev.seq + 1 || run.length >= BLOCK_MAX_LINES || chars >= BLOCK_MAX_CHARS)) close();
      run.push(l);
      chars += l.message.length;
    }
    close();
  }
  return out;
}

function encode(jobId: string, run: LogLine[]): BlockRow {
  const d: BlockData = { t: [], s: '', m: [] };
  let prev = 0;
  run.forEach((l, i) => {
    const ms = ISO_MS.test(l.timestamp) ? Date.parse(l.timestamp) : NaN;
    if (Number.isNaN(ms)) {
      (d.x ??= {})[i] = l.timestamp;
      d.t.push(0);
    } else {
      d.t.push(ms - prev);
      prev = ms;
    }
    d.s += STREAM_CODE[l.stream] ?? 'o';
    d.m.push(l.message);
  });
  return { job_id: jobId, first_seq: run[0]!.seq, last_seq: run.at(-1)!.seq, data: JSON.stringify(d) };
}

/** The lines of a stored block. */
export function fromBlock(row: { job_id: string; first_seq: number | string; data: string }): LogLine[] {
  const d = JSON.parse(row.data) as BlockData;
  const first = Number(row.first_seq);
  const out: LogLine[] = [];
  let ms = 0;
  // Lines of one millisecond share their timestamp string (formatting dominates decoding).
  let iso = '';
  let isoMs = NaN;
  for (let i = 0; i < d.m.length; i++) {
    const verbatim = d.x?.[i];
    if (verbatim === undefined) {
      ms += d.t[i]!;
      if (ms !== isoMs) {
        iso = new Date(ms).toISOString();
        isoMs = ms;
      }
    }
    out.push({
      job_id: row.job_id,
      seq: first + i,
      timestamp: verbatim ?? iso,
      stream: CODE_STREAM[d.s[i]!] ?? 'stdout',
      message: d.m[i]!,
    });
  }
  return out;
}
