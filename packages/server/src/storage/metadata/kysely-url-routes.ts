import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import { UniqueViolationError } from './store.js';
import type { UrlRouteRecord, UrlRouteStore } from './url-routes.js';

/** URL route rows on Kysely: one code path for SQLite and PostgreSQL. */
export class KyselyUrlRouteStore implements UrlRouteStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insertRoute(row: UrlRouteRecord): Promise<void> {
    try {
      await this.db.insertInto('url_routes').values(row).execute();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new UniqueViolationError(`subdomain ${row.subdomain} is already in use`);
      }
      throw err;
    }
  }

  async getRoute(subdomain: string): Promise<UrlRouteRecord | undefined> {
    const row = await this.db.selectFrom('url_routes').selectAll().where('subdomain', '=', subdomain).executeTakeFirst();
    return row && toRecord(row);
  }

  async getJobRoute(jobId: string, port: number): Promise<UrlRouteRecord | undefined> {
    const row = await this.db.selectFrom('url_routes').selectAll().where('job_id', '=', jobId).where('port', '=', port).where('kind', '=', 'job').executeTakeFirst();
    return row && toRecord(row);
  }

  async setAuth(subdomain: string, auth: UrlRouteRecord['auth']): Promise<void> {
    await this.db.updateTable('url_routes').set({ auth }).where('subdomain', '=', subdomain).execute();
  }

  async listAliases(userId: string): Promise<UrlRouteRecord[]> {
    const rows = await this.db.selectFrom('url_routes').selectAll().where('user_id', '=', userId).where('kind', '=', 'alias').orderBy('created_at').orderBy('subdomain').execute();
    return rows.map(toRecord);
  }

  async deleteAlias(userId: string, subdomain: string): Promise<boolean> {
    const r = await this.db.deleteFrom('url_routes').where('user_id', '=', userId).where('subdomain', '=', subdomain).where('kind', '=', 'alias').executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}

// PostgreSQL may return integer columns as strings.
function toRecord(row: UrlRouteRecord): UrlRouteRecord {
  return { ...row, port: Number(row.port) };
}
