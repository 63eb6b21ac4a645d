import type { Kysely, Migration } from 'kysely';
import { decodeLogText } from '../../logs/text-encoding.js';
import type { Dialect } from '../db.js';

/** Old lines converted per statement batch. */
const BATCH = 1000;
/** Largest chunk the conversion builds from old lines. */
const CHUNK_BYTES = 64 * 1024;

interface OldLine {
  job_id: string;
  seq: number;
  ts: string;
  stream: string;
  text: string;
  escaped: number;
}

interface Building {
  job_id: string;
  chunk: number;
  stream: string;
  ts: string;
  byte_offset: number;
  line_start: number;
  first_seq: number;
  last_seq: number;
  parts: Buffer[];
  size: number;
}

/**
 * `job_log_chunks`: job output as raw byte chunks (storage/logs/store.ts) instead of one row per
 * line. Lines stored in `job_logs` before it are converted, keeping every seq: consecutive lines of
 * one stream of a job become one chunk of `text + "\n"` each (a line that held a lone surrogate
 * reads back with U+FFFD, as UTF-8 has no encoding for it); then `job_logs` is dropped. Undoing it
 * restores an empty `job_logs`.
 */
export function migration011(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('job_log_chunks')
        .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.request_id').onDelete('cascade'))
        .addColumn('chunk', 'integer', (c) => c.notNull())
        .addColumn('stream', 'text', (c) => c.notNull())
        .addColumn('ts', 'text', (c) => c.notNull())
        .addColumn('byte_offset', 'bigint', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('line_start', 'bigint', (c) => c.notNull())
        .addColumn('first_seq', 'integer', (c) => c.notNull())
        .addColumn('last_seq', 'integer', (c) => c.notNull())
        .addColumn('data', dialect === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull())
        .addPrimaryKeyConstraint('job_log_chunks_pk', ['job_id', 'chunk'])
        .execute();
      await db.schema.createIndex('job_log_chunks_seq').on('job_log_chunks').columns(['job_id', 'last_seq']).execute();
      await convertOldLines(db);
      await db.schema.dropTable('job_logs').execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('job_log_chunks').execute();
      await db.schema
        .createTable('job_logs')
        .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.request_id').onDelete('cascade'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('ts', 'text', (c) => c.notNull())
        .addColumn('stream', 'text', (c) => c.notNull())
        .addColumn('text', 'text', (c) => c.notNull())
        .addColumn('escaped', 'integer', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('job_logs_pk', ['job_id', 'seq'])
        .execute();
    },
  };
}

/** Reads `job_logs` in (job_id, seq) order, a batch at a time, and writes chunks. */
async function convertOldLines(db: Kysely<any>): Promise<void> {
  let after: { job_id: string; seq: number } | null = null;
  let job: { id: string; chunk: number; bytes: Map<string, number> } | null = null;
  let open: Building | null = null;
  const out: Building[] = [];
  const flush = async () => {
    for (let i = 0; i < out.length; i += 100) {
      await db.insertInto('job_log_chunks').values(out.slice(i, i + 100).map(row)).execute();
    }
    out.length = 0;
  };
  for (;;) {
    let q = db.selectFrom('job_logs').selectAll();
    if (after) {
      const a = after;
      q = q.where((eb) => eb.or([eb('job_id', '>', a.job_id), eb.and([eb('job_id', '=', a.job_id), eb('seq', '>', a.seq)])]));
    }
    const lines = (await q.orderBy('job_id').orderBy('seq').limit(BATCH).execute()) as OldLine[];
    if (lines.length === 0) break;
    for (const l of lines) {
      const seq = Number(l.seq);
      if (!job || job.id !== l.job_id) {
        if (open) out.push(open);
        open = null;
        job = { id: l.job_id, chunk: 0, bytes: new Map() };
      }
      const data = Buffer.from(decodeLogText(l.text, Number(l.escaped) === 1) + '\n', 'utf8');
      if (!open || open.stream !== l.stream || open.size + data.length > CHUNK_BYTES) {
        if (open) out.push(open);
        const offset = job.bytes.get(l.stream) ?? 0;
        open = { job_id: l.job_id, chunk: ++job.chunk, stream: l.stream, ts: l.ts, byte_offset: offset, line_start: offset, first_seq: seq, last_seq: seq - 1, parts: [], size: 0 };
      }
      open.parts.push(data);
      open.size += data.length;
      open.last_seq = seq;
      job.bytes.set(l.stream, (job.bytes.get(l.stream) ?? 0) + data.length);
      after = { job_id: l.job_id, seq };
    }
    await flush();
  }
  if (open) out.push(open);
  await flush();
}

function row(b: Building) {
  const { parts, ...rest } = b;
  return { ...rest, data: Buffer.concat(parts) };
}
