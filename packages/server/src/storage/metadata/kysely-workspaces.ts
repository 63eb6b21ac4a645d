import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { WorkspacePatch, WorkspaceRecord, WorkspaceStore } from './workspaces.js';

/** Workspace rows on Kysely: one code path for SQLite and PostgreSQL. */
export class KyselyWorkspaceStore implements WorkspaceStore {
  constructor(private readonly db: Kysely<Database>) {}

  async getWorkspace(userId: string, name: string): Promise<WorkspaceRecord | undefined> {
    return this.db.selectFrom('workspaces').selectAll().where('user_id', '=', userId).where('name', '=', name).executeTakeFirst();
  }

  async ensureWorkspace(ws: WorkspaceRecord): Promise<{ row: WorkspaceRecord; created: boolean }> {
    const r = await this.db
      .insertInto('workspaces')
      .values(ws)
      .onConflict((oc) => oc.columns(['user_id', 'name']).doNothing())
      .executeTakeFirst();
    return { row: (await this.getWorkspace(ws.user_id, ws.name))!, created: Number(r.numInsertedOrUpdatedRows ?? 0) > 0 };
  }

  async activeJob(userId: string, name: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('jobs')
      .select('request_id')
      .where('user_id', '=', userId)
      .where('workspace_id', '=', name)
      .where('status', 'in', ['pending', 'running'])
      .orderBy('num')
      .executeTakeFirst();
    return row?.request_id;
  }

  async listWorkspaces(userId: string): Promise<WorkspaceRecord[]> {
    return this.db.selectFrom('workspaces').selectAll().where('user_id', '=', userId).orderBy('created_at').orderBy('name').execute();
  }

  async updateWorkspace(userId: string, name: string, patch: WorkspacePatch): Promise<boolean> {
    if (Object.keys(patch).length === 0) return (await this.getWorkspace(userId, name)) !== undefined;
    const r = await this.db.updateTable('workspaces').set(patch).where('user_id', '=', userId).where('name', '=', name).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async deleteWorkspace(userId: string, name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('workspaces').where('user_id', '=', userId).where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
