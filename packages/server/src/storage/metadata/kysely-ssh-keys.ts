import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { SshKeyRecord, SshKeyStore } from './ssh-keys.js';

/** SSH key rows on Kysely: one code path for SQLite and PostgreSQL. */
export class KyselySshKeyStore implements SshKeyStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insertSshKey(row: SshKeyRecord, keep: number): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('ssh_keys').values(row).execute();
      const active = await tx
        .selectFrom('ssh_keys')
        .select('id')
        .where('job_id', '=', row.job_id)
        .where('revoked_at', 'is', null)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .execute();
      const old = active.slice(keep).map((r) => r.id);
      if (old.length > 0) await tx.updateTable('ssh_keys').set({ revoked_at: row.created_at }).where('id', 'in', old).execute();
    });
  }

  async findSshKey(fingerprint: string): Promise<SshKeyRecord | undefined> {
    const row = await this.db.selectFrom('ssh_keys').selectAll().where('fingerprint', '=', fingerprint).executeTakeFirst();
    return row;
  }

  async revokeSshKeys(jobId: string, at: string): Promise<number> {
    const r = await this.db.updateTable('ssh_keys').set({ revoked_at: at }).where('job_id', '=', jobId).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows);
  }
}
