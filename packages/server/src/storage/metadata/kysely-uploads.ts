import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { UploadRecord, UploadStore } from './uploads.js';

/** Upload rows on Kysely: one code path for SQLite and PostgreSQL. */
export class KyselyUploadStore implements UploadStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insertUpload(row: UploadRecord): Promise<void> {
    await this.db.insertInto('uploads').values(row).execute();
  }

  async getUpload(userId: string, id: string): Promise<UploadRecord | undefined> {
    const row = await this.db.selectFrom('uploads').selectAll().where('user_id', '=', userId).where('id', '=', id).executeTakeFirst();
    return row && toRecord(row);
  }

  async listUploads(userId: string): Promise<UploadRecord[]> {
    const rows = await this.db.selectFrom('uploads').selectAll().where('user_id', '=', userId).orderBy('created_at', 'desc').orderBy('id').execute();
    return rows.map(toRecord);
  }

  async deleteUpload(userId: string, id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('uploads').where('user_id', '=', userId).where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}

// PostgreSQL returns bigint columns as strings.
function toRecord(row: UploadRecord): UploadRecord {
  return { ...row, size: Number(row.size) };
}
