import { sql, type Kysely } from 'kysely';
import { keepNewestBound, yieldToEventLoop } from './db.js';
import type { Database, WebhookEndpointsTable } from './schema.js';
import type { DeliveryPatch, WebhookDeliveryRecord, WebhookEndpointRecord, WebhookStore } from './webhooks.js';

/** Webhook rows on Kysely: one code path for SQLite and PostgreSQL. */
export class KyselyWebhookStore implements WebhookStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insertEndpoint(row: WebhookEndpointRecord): Promise<void> {
    await this.db.insertInto('webhook_endpoints').values({ ...row, events: JSON.stringify(row.events) }).execute();
  }

  async getEndpoint(userId: string, id: string): Promise<WebhookEndpointRecord | undefined> {
    const row = await this.db.selectFrom('webhook_endpoints').selectAll().where('user_id', '=', userId).where('id', '=', id).executeTakeFirst();
    return row && endpoint(row);
  }

  async listEndpoints(userId: string): Promise<WebhookEndpointRecord[]> {
    const rows = await this.db.selectFrom('webhook_endpoints').selectAll().where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute();
    return rows.map(endpoint);
  }

  async updateEndpoint(id: string, patch: Parameters<WebhookStore['updateEndpoint']>[1]): Promise<boolean> {
    const { events, ...rest } = patch;
    const r = await this.db
      .updateTable('webhook_endpoints')
      .set({ ...rest, ...(events ? { events: JSON.stringify(events) } : {}) })
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async deleteEndpoint(userId: string, id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('webhook_endpoints').where('user_id', '=', userId).where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async getSigningKey(userId: string): Promise<string | undefined> {
    return (await this.db.selectFrom('webhook_signing_keys').select('secret').where('user_id', '=', userId).executeTakeFirst())?.secret;
  }

  async setSigningKey(userId: string, secret: string, at: string): Promise<void> {
    await this.db
      .insertInto('webhook_signing_keys')
      .values({ user_id: userId, secret, created_at: at })
      .onConflict((oc) => oc.column('user_id').doUpdateSet({ secret, created_at: at }))
      .execute();
  }

  async insertDelivery(row: WebhookDeliveryRecord): Promise<void> {
    await this.db.insertInto('webhook_deliveries').values(row).execute();
  }

  async getDelivery(id: string): Promise<WebhookDeliveryRecord | undefined> {
    const row = await this.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
    return row && delivery(row);
  }

  async listDeliveries(endpointId: string, limit: number): Promise<WebhookDeliveryRecord[]> {
    const rows = await this.db.selectFrom('webhook_deliveries').selectAll().where('endpoint_id', '=', endpointId).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    return rows.map(delivery);
  }

  async dueDeliveries(nowIso: string, limit: number): Promise<WebhookDeliveryRecord[]> {
    const rows = await this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', nowIso)
      .orderBy('next_attempt_at')
      .limit(limit)
      .execute();
    return rows.map(delivery);
  }

  async nextDeliveryAt(): Promise<string | undefined> {
    const row = await this.db.selectFrom('webhook_deliveries').select((eb) => eb.fn.min('next_attempt_at').as('at')).where('status', '=', 'pending').executeTakeFirst();
    return (row?.at as string | null | undefined) ?? undefined;
  }

  async claimDelivery(id: string, expected: string, until: string): Promise<boolean> {
    const r = await this.db
      .updateTable('webhook_deliveries')
      .set({ next_attempt_at: until })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '=', expected)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async updateDelivery(id: string, patch: DeliveryPatch): Promise<void> {
    await this.db.updateTable('webhook_deliveries').set(patch).where('id', '=', id).execute();
  }

  async pruneDeliveries(before: string, keepNewest: number): Promise<number> {
    // Endpoint by endpoint (null: jobs' own webhook_url; also endpoints deleted since): each step is
    // a range of the (endpoint_id, created_at) index, so a large table is never scanned in one statement.
    let deleted = await this.pruneDeliveriesOf(null, before, keepNewest);
    for (const id of await this.endpointIdsOfDeliveries()) {
      await yieldToEventLoop();
      deleted += await this.pruneDeliveriesOf(id, before, keepNewest);
    }
    return deleted;
  }

  /** The distinct endpoint ids of stored deliveries, one index seek each. */
  private async endpointIdsOfDeliveries(): Promise<string[]> {
    const r = await sql<{ id: string | null }>`
      WITH RECURSIVE e(id) AS (
        SELECT MIN(endpoint_id) FROM webhook_deliveries
        UNION ALL
        SELECT (SELECT MIN(endpoint_id) FROM webhook_deliveries WHERE endpoint_id > e.id) FROM e WHERE e.id IS NOT NULL
      )
      SELECT id FROM e WHERE id IS NOT NULL`.execute(this.db);
    return r.rows.map((row) => row.id!);
  }

  private async pruneDeliveriesOf(endpointId: string | null, before: string, keepNewest: number): Promise<number> {
    const op = endpointId === null ? 'is' : '=';
    // Deliveries older than the endpoint's newest `keepNewest` (and than the cutoff): an index range.
    const bound = await keepNewestBound(this.db, { table: 'webhook_deliveries', owner: 'endpoint_id', ownerId: endpointId, key: 'created_at' }, before, keepNewest);
    if (bound === undefined) return 0;
    // Pending deliveries (waiting for an attempt, or being sent) are never deleted.
    const r = await this.db
      .deleteFrom('webhook_deliveries')
      .where('endpoint_id', op, endpointId)
      .where('created_at', '<', bound)
      .where('status', 'in', ['delivered', 'failed'])
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}

function endpoint(row: WebhookEndpointsTable): WebhookEndpointRecord {
  return { ...row, events: JSON.parse(row.events), consecutive_failures: Number(row.consecutive_failures) } as WebhookEndpointRecord;
}

// PostgreSQL returns integer columns as numbers and bigint as strings; normalise both.
function delivery(row: WebhookDeliveryRecord): WebhookDeliveryRecord {
  return { ...row, attempts: Number(row.attempts), last_status_code: row.last_status_code === null ? null : Number(row.last_status_code) };
}
