import { TERMINAL_STATUSES, type LogStream } from '@mags/shared';
import { sql, type ExpressionBuilder, type Kysely } from 'kysely';
import type { LogsDatabase } from './schema.js';
import type { LogLine, LogStore } from './store.js';
import { fromBlock, toBlocks } from './blocks.js';
import { decodeLogText } from './text-encoding.js';

/** Rows per INSERT statement, well under SQLite's bound-parameter limit. */
const INSERT_CHUNK = 200;
/** Blocks fetched per query while filling a page (a block holds up to 1000 lines; decoding more than a page needs is waste). */
const READ_BLOCKS = 4;

/**
 * Log lines in the metadata database, one code path for SQLite and PostgreSQL. New lines are stored
 * in blocks of consecutive lines (`job_log_blocks`, blocks.ts): 2 M tiny lines are ~2000 rows, not
 * 2 M. Lines stored one per row before migration 007 (`job_logs`) are still read, deleted and
 * counted; reads merge both by seq.
 */
export class KyselyLogStore implements LogStore {
  constructor(private readonly db: Kysely<LogsDatabase>) {}

  async append(lines: readonly LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    const blocks = toBlocks(lines);
    await this.db.transaction().execute(async (trx) => {
      // A seq already stored makes the whole append fail, as a primary key on (job, seq) would.
      for (const b of blocks) {
        const hit = await trx
          .selectFrom('job_log_blocks')
          .select('first_seq')
          .where('job_id', '=', b.job_id)
          .where('last_seq', '>=', b.first_seq)
          .orderBy('last_seq')
          .limit(1)
          .executeTakeFirst();
        if (hit && Number(hit.first_seq) <= b.last_seq) {
          throw new Error(`log lines ${b.first_seq}-${b.last_seq} of job ${b.job_id} overlap lines already stored`);
        }
      }
      for (let i = 0; i < blocks.length; i += INSERT_CHUNK) {
        await trx.insertInto('job_log_blocks').values(blocks.slice(i, i + INSERT_CHUNK)).execute();
      }
    });
  }

  async read(jobId: string, afterSeq: number, limit: number): Promise<LogLine[]> {
    const out: LogLine[] = [];
    let after = afterSeq;
    while (out.length < limit) {
      const rows = await this.db
        .selectFrom('job_log_blocks')
        .select(['job_id', 'first_seq', 'data'])
        .where('job_id', '=', jobId)
        .where('last_seq', '>', after)
        .orderBy('last_seq')
        .limit(READ_BLOCKS)
        .execute();
      for (const r of rows) {
        if (out.length >= limit) break;
        for (const l of fromBlock(r)) if (l.seq > afterSeq && out.length < limit) out.push(l);
      }
      if (rows.length < READ_BLOCKS) break;
      after = out.at(-1)?.seq ?? after;
    }
    const legacy = await this.readLegacy(jobId, afterSeq, limit);
    if (legacy.length === 0) return out;
    return [...out, ...legacy].sort((a, b) => a.seq - b.seq).slice(0, limit);
  }

  private async readLegacy(jobId: string, afterSeq: number, limit: number): Promise<LogLine[]> {
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
    const block = await this.db
      .selectFrom('job_log_blocks')
      .select((eb) => eb.fn.max('last_seq').as('m'))
      .where('job_id', '=', jobId)
      .executeTakeFirst();
    const row = await this.db
      .selectFrom('job_logs')
      .select((eb) => eb.fn.max('seq').as('m'))
      .where('job_id', '=', jobId)
      .executeTakeFirst();
    return Math.max(block?.m == null ? 0 : Number(block.m), row?.m == null ? 0 : Number(row.m));
  }

  async deleteEndedBefore(cutoff: string): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const ended = (eb: ExpressionBuilder<LogsDatabase, 'job_log_blocks' | 'job_logs'>) =>
        eb.selectFrom('jobs').select('request_id').where('status', 'in', [...TERMINAL_STATUSES]).where('completed_at', '<', cutoff);
      const counted = await trx
        .selectFrom('job_log_blocks')
        .select((eb) => eb.fn.sum<number | string | null>(sql`last_seq - first_seq + 1`).as('n'))
        .where('job_id', 'in', ended)
        .executeTakeFirst();
      await trx.deleteFrom('job_log_blocks').where('job_id', 'in', ended).execute();
      const legacy = await trx.deleteFrom('job_logs').where('job_id', 'in', ended).executeTakeFirst();
      return Number(counted?.n ?? 0) + Number(legacy.numDeletedRows);
    });
  }
}
