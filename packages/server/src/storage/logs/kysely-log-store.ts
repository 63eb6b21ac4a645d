import { TERMINAL_STATUSES, type LogStream } from '@mags/shared';
import type { Kysely } from 'kysely';
import { nextLine } from './lines.js';
import type { LogsDatabase } from './schema.js';
import type { LogChunk, LogLine, LogPosition, LogStore } from './store.js';

/** Rows per INSERT statement, well under SQLite's bound-parameter limit. */
const INSERT_CHUNK = 100;
/** Chunks read at once while cutting lines. */
const READ_CHUNKS = 16;

type Row = LogsDatabase['job_log_chunks'];

/** Job output chunks in the `job_log_chunks` table of the metadata database: one code path for SQLite and PostgreSQL. */
export class KyselyLogStore implements LogStore {
  constructor(private readonly db: Kysely<LogsDatabase>) {}

  async appendChunks(chunks: readonly LogChunk[]): Promise<void> {
    if (chunks.length === 0) return;
    const rows: Row[] = chunks.map((c) => ({
      job_id: c.job_id,
      chunk: c.chunk,
      stream: c.stream,
      ts: c.timestamp,
      byte_offset: c.byte_offset,
      size: c.data.length,
      line_start: c.line_start,
      first_seq: c.first_seq,
      last_seq: c.last_seq,
      data: c.data,
    }));
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
        await trx.insertInto('job_log_chunks').values(rows.slice(i, i + INSERT_CHUNK)).execute();
      }
    });
  }

  async readChunks(jobId: string, afterChunk: number, limit: number, stream?: LogStream): Promise<LogChunk[]> {
    let q = this.db.selectFrom('job_log_chunks').selectAll().where('job_id', '=', jobId).where('chunk', '>', afterChunk);
    if (stream) q = q.where('stream', '=', stream);
    const rows = await q.orderBy('chunk').limit(limit).execute();
    return rows.map(toChunk);
  }

  async read(jobId: string, afterSeq: number, limit: number): Promise<LogLine[]> {
    const lines: LogLine[] = [];
    let afterChunk = 0;
    // The bytes of the line open at the end of the last chunk read, per stream (saves a lookup).
    const open = new Map<string, { start: number; end: number; bytes: Buffer }>();
    while (lines.length < limit) {
      let q = this.db.selectFrom('job_log_chunks').selectAll().where('job_id', '=', jobId).where('last_seq', '>', afterSeq);
      q = q.whereRef('last_seq', '>=', 'first_seq').where('chunk', '>', afterChunk);
      const rows = await q.orderBy('chunk').limit(READ_CHUNKS).execute();
      if (rows.length === 0) break;
      for (const row of rows) {
        const c = toChunk(row);
        afterChunk = c.chunk;
        const held = open.get(c.stream);
        const prefix = held && held.start <= c.line_start && held.end === c.byte_offset
          ? held.bytes.subarray(c.line_start - held.start)
          : await this.bytesBetween(jobId, c.stream, c.chunk, c.line_start, c.byte_offset);
        const buf = prefix.length > 0 ? Buffer.concat([prefix, c.data]) : c.data;
        let pos = 0;
        for (let seq = c.first_seq; seq <= c.last_seq; seq++) {
          const cut = nextLine(buf, pos, seq === c.last_seq) ?? { end: buf.length, next: buf.length };
          if (seq > afterSeq && lines.length < limit) {
            lines.push({ job_id: jobId, seq, timestamp: c.timestamp, stream: c.stream, message: buf.toString('utf8', pos, cut.end) });
          }
          pos = cut.next;
        }
        const restStart = c.byte_offset + c.data.length - (buf.length - pos);
        open.set(c.stream, { start: restStart, end: c.byte_offset + c.data.length, bytes: buf.subarray(pos) });
        if (lines.length >= limit) break;
      }
    }
    return lines;
  }

  /** Bytes [from, to) of one stream of a job, from chunks before `beforeChunk` (what is stored of them). */
  private async bytesBetween(jobId: string, stream: LogStream, beforeChunk: number, from: number, to: number): Promise<Buffer> {
    if (from >= to) return Buffer.alloc(0);
    const rows = await this.db
      .selectFrom('job_log_chunks')
      .select(['byte_offset', 'data'])
      .where('job_id', '=', jobId)
      .where('stream', '=', stream)
      .where('chunk', '<', beforeChunk)
      .where('byte_offset', '<', to)
      .where((eb) => eb(eb('byte_offset', '+', eb.ref('size')), '>', from))
      .orderBy('chunk')
      .execute();
    const parts = rows.map((r) => {
      const off = Number(r.byte_offset);
      const data = Buffer.from(r.data);
      return data.subarray(Math.max(0, from - off), Math.min(data.length, to - off));
    });
    return Buffer.concat(parts);
  }

  async maxSeq(jobId: string): Promise<number> {
    const row = await this.db
      .selectFrom('job_log_chunks')
      .select((eb) => eb.fn.max('last_seq').as('m'))
      .where('job_id', '=', jobId)
      .executeTakeFirst();
    return row?.m == null ? 0 : Number(row.m);
  }

  async position(jobId: string): Promise<LogPosition> {
    const rows = await this.db
      .selectFrom('job_log_chunks')
      .select((eb) => ['stream', eb.fn.max('chunk').as('chunk'), eb.fn.max('last_seq').as('seq'), eb.fn.max(eb('byte_offset', '+', eb.ref('size'))).as('bytes')])
      .where('job_id', '=', jobId)
      .groupBy('stream')
      .execute();
    const pos: LogPosition = { nextChunk: 1, nextSeq: 1, streamBytes: { stdout: 0, stderr: 0, system: 0 } };
    for (const r of rows) {
      pos.nextChunk = Math.max(pos.nextChunk, Number(r.chunk) + 1);
      pos.nextSeq = Math.max(pos.nextSeq, Number(r.seq) + 1);
      pos.streamBytes[r.stream as LogStream] = Number(r.bytes);
    }
    return pos;
  }

  async deleteJob(jobId: string): Promise<number> {
    const result = await this.db.deleteFrom('job_log_chunks').where('job_id', '=', jobId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteEndedBefore(cutoff: string): Promise<number> {
    const result = await this.db
      .deleteFrom('job_log_chunks')
      .where('job_id', 'in', (eb) =>
        eb.selectFrom('jobs').select('request_id').where('status', 'in', [...TERMINAL_STATUSES]).where('completed_at', '<', cutoff),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function toChunk(r: Row): LogChunk {
  return {
    job_id: r.job_id,
    chunk: Number(r.chunk),
    stream: r.stream as LogStream,
    timestamp: r.ts,
    byte_offset: Number(r.byte_offset),
    line_start: Number(r.line_start),
    first_seq: Number(r.first_seq),
    last_seq: Number(r.last_seq),
    data: Buffer.isBuffer(r.data) ? r.data : Buffer.from(r.data),
  };
}
