/** Events a webhook endpoint can subscribe to. */
export const WEBHOOK_EVENTS = ['job.completed', 'job.failed', 'job.sleeping', 'workspace.synced'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** A user's webhook endpoint. The secret (`whsec_...`) is shown once, at creation. */
export interface WebhookEndpointRecord {
  id: string;
  user_id: string;
  url: string;
  description: string | null;
  events: WebhookEvent[];
  secret: string;
  /** `active`, or `disabled` after repeated failures (`disabled_reason` says why). */
  status: 'active' | 'disabled';
  disabled_reason: string | null;
  consecutive_failures: number;
  created_at: string;
  updated_at: string;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** One event sent (or being sent) to one URL. `id` is the `webhook-id` header (same on every attempt). */
export interface WebhookDeliveryRecord {
  id: string;
  user_id: string;
  /** The endpoint, or null for a job's own `webhook_url`. */
  endpoint_id: string | null;
  job_id: string | null;
  url: string;
  event_type: string;
  /** The JSON body sent. */
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  /** When the next attempt is due; null once delivered or failed. */
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  /** The receiver's answer, at most 4 KiB. */
  last_response: string | null;
  delivered_at: string | null;
  created_at: string;
}

export type DeliveryPatch = Partial<Omit<WebhookDeliveryRecord, 'id' | 'user_id' | 'endpoint_id' | 'job_id' | 'url' | 'event_type' | 'payload'>>;

/**
 * Webhook endpoints, signing keys and deliveries. `KyselyWebhookStore` implements it on SQLite and
 * PostgreSQL; `claimDelivery` is compare-and-set so two daemons never send one attempt twice.
 */
export interface WebhookStore {
  insertEndpoint(row: WebhookEndpointRecord): Promise<void>;
  getEndpoint(userId: string, id: string): Promise<WebhookEndpointRecord | undefined>;
  listEndpoints(userId: string): Promise<WebhookEndpointRecord[]>;
  updateEndpoint(id: string, patch: Partial<Pick<WebhookEndpointRecord, 'status' | 'disabled_reason' | 'consecutive_failures' | 'url' | 'events' | 'description' | 'updated_at'>>): Promise<boolean>;
  deleteEndpoint(userId: string, id: string): Promise<boolean>;
  /** The user's signing key for jobs' own `webhook_url`. */
  getSigningKey(userId: string): Promise<string | undefined>;
  setSigningKey(userId: string, secret: string, at: string): Promise<void>;
  insertDelivery(row: WebhookDeliveryRecord): Promise<void>;
  getDelivery(id: string): Promise<WebhookDeliveryRecord | undefined>;
  /** An endpoint's deliveries, newest first. */
  listDeliveries(endpointId: string, limit: number): Promise<WebhookDeliveryRecord[]>;
  /** Pending deliveries due at or before `nowIso`, earliest first. */
  dueDeliveries(nowIso: string, limit: number): Promise<WebhookDeliveryRecord[]>;
  /** The earliest next_attempt_at of pending deliveries. */
  nextDeliveryAt(): Promise<string | undefined>;
  /** Moves a pending delivery's next attempt from `expected` to `until`; false when another daemon claimed it. */
  claimDelivery(id: string, expected: string, until: string): Promise<boolean>;
  updateDelivery(id: string, patch: DeliveryPatch): Promise<void>;
  /**
   * Deletes `delivered` and `failed` deliveries created before `before`, except each endpoint's
   * newest `keepNewest` (pending ones always stay); answers how many went.
   */
  pruneDeliveries(before: string, keepNewest: number): Promise<number>;
}
