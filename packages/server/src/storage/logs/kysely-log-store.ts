import { TERMINAL_STATUSES, type LogStream } from '@mags/shared';
import type { Kysely } from 'kysely';
import type { LogsDatabase } from './schema.js';
import type { LogLine, LogStore } from './store.js';
import { decodeLogText, encodeLogText } from './text-encoding.js';

/** Rows per INSERT statement, well under SQLite's bound-parameter limit. */
const INSERT_CHUNK = 500;

/** Log lines in the `job_logs` table of the metadata database: one code path for SQLite and PostgreSQL. */
export class KyselyLogStore implements LogStore {
  constructor(private readonly db: Kysely<LogsDatabase>) {}

  async append(lines: readonly LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    const rows = lines.map((l) => {
      const { text, escaped } = encodeLogText(l.message);
      return { job_id: l.job_id, seq: l.seq, ts: l.timestamp, stream: l.stream, text, escaped: escaped ? 1 : 0 };
    });
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
        await trx.insertInto('job_logs').values(rows.slice(i, i + INSERT_CHUNK)).execute();
      }
    });
  }

  async read(jobId: string, afterSeq: number, limit: number): Promise<LogLine[]> {
    const rows = await this.db
      .selectFrom('job_logs')
      .selectAll()
      .where('job_id', '=', jobId)
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      job_id: r.job_id,
      seq: Number(r.seq),
      timestamp: r.ts,
      stream: r.stream as LogStream,
      message: decodeLogText(r.text, Number(r.escaped) === 1),
    }));
  }

  async maxSeq(jobId: string): Promise<number> {
    const row = await this.db
      .selectFrom('job_logs')
      .select((eb) => eb.fn.max('seq').as('m'))
      .where('job_id', '=', jobId)
      .executeTakeFirst();
    return row?.m == null ? 0 : Number(row.m);
  }

  async deleteEndedBefore(cutoff: string): Promise<number> {
    const result = await this.db
      .deleteFrom('job_logs')
      .where('job_id', 'in', (eb) =>
        eb.selectFrom('jobs').select('request_id').where('status', 'in', [...TERMINAL_STATUSES]).where('completed_at', '<', cutoff),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
