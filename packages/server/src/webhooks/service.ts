import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { AppError } from '../services/errors.js';
import type { ChangeSet, EndedStatus, JobEventListener, WorkspaceSynced } from '../services/job-events.js';
import { newId } from '../services/tokens.js';
import type { LogStore } from '../storage/logs/store.js';
import type { Job, JobStore, User } from '../storage/metadata/store.js';
import { WEBHOOK_EVENTS, type WebhookDeliveryRecord, type WebhookEndpointRecord, type WebhookEvent, type WebhookStore } from '../storage/metadata/webhooks.js';
import type { Clock } from '../clock.js';
import { resolveTarget } from './target.js';

/** Output lines a job event carries. */
export const OUTPUT_TAIL_LINES = 50;
/** Changed paths a job event lists per kind (the counts stay exact in `changes.truncated`). */
const MAX_CHANGES = 1000;
/** Endpoints one user may have. */
const MAX_ENDPOINTS = 20;

export interface WebhooksServiceOptions {
  store: WebhookStore;
  jobs: JobStore;
  logs: Pick<LogStore, 'read' | 'maxSeq'>;
  log: Logger;
  allowPrivate: boolean;
  /** Base URL of the API for the logs link (e.g. `https://mags.example.com`), read per event. */
  publicUrl: () => string;
  clock?: Clock;
  /** Told when a delivery is stored (the dispatcher sends it). */
  onQueued?: () => void;
}

/** An endpoint as the API shows it (the secret only in the create answer). */
export type EndpointView = Omit<WebhookEndpointRecord, 'secret' | 'user_id'>;

/**
 * Webhooks: endpoints of a user, the signing key of jobs' own `webhook_url`, the events of job ends
 * and workspace syncs turned into stored deliveries (the dispatcher sends them), the delivery log
 * and redelivery.
 */
export class WebhooksService implements JobEventListener {
  /** Changes of each workspace's syncs since its last job event, keyed `<userId>/<workspace>`. */
  private readonly pendingChanges = new Map<string, ChangeSet>();

  constructor(private readonly o: WebhooksServiceOptions) {}

  private now(): string {
    return new Date(this.o.clock?.now() ?? Date.now()).toISOString();
  }

  /** Refuses a job's or schedule's `webhook_url` that is not a safe target or that nothing can sign. */
  async checkJobTarget(userId: string, url: string, field = 'webhook_url'): Promise<void> {
    await resolveTarget(field, url, this.o.allowPrivate);
    if (!(await this.o.store.getSigningKey(userId))) {
      throw new AppError(
        'VALIDATION_ERROR',
        `${field}: create your webhook signing key first; deliveries to a job's webhook_url are signed with it`,
        'POST /api/v1/webhooks/signing-key (mags webhook signing-key) shows it once.',
      );
    }
  }

  /** Creates (or replaces) the user's signing key for jobs' own webhook_url; the answer is the only time it is shown. */
  async rotateSigningKey(user: User): Promise<string> {
    const secret = newSecret();
    await this.o.store.setSigningKey(user.id, secret, this.now());
    return secret;
  }

  async createEndpoint(user: User, input: { url: string; events?: WebhookEvent[] | null; description?: string | null }): Promise<WebhookEndpointRecord> {
    await resolveTarget('url', input.url, this.o.allowPrivate);
    const existing = await this.o.store.listEndpoints(user.id);
    if (existing.length >= MAX_ENDPOINTS) throw new AppError('RATE_LIMITED', `You have ${existing.length} webhook endpoints (the limit is ${MAX_ENDPOINTS})`, 'Remove one with DELETE /api/v1/webhooks/{id}.');
    const now = this.now();
    const row: WebhookEndpointRecord = {
      id: `ep_${randomBytes(12).toString('hex')}`,
      user_id: user.id,
      url: input.url,
      description: input.description || null,
      events: input.events && input.events.length > 0 ? [...new Set(input.events)] : [...WEBHOOK_EVENTS],
      secret: newSecret(),
      status: 'active',
      disabled_reason: null,
      consecutive_failures: 0,
      created_at: now,
      updated_at: now,
    };
    await this.o.store.insertEndpoint(row);
    return row;
  }

  async listEndpoints(user: User): Promise<EndpointView[]> {
    return (await this.o.store.listEndpoints(user.id)).map(viewOf);
  }

  async getEndpoint(user: User, id: string): Promise<WebhookEndpointRecord> {
    const ep = await this.o.store.getEndpoint(user.id, id);
    if (!ep) throw new AppError('WEBHOOK_NOT_FOUND', `No webhook endpoint of yours has id "${id.slice(0, 80)}"`, 'List your endpoints with GET /api/v1/webhooks.');
    return ep;
  }

  /** Changes url, events, description; `enabled: true` re-enables a disabled endpoint. */
  async updateEndpoint(user: User, id: string, patch: { url?: string; events?: WebhookEvent[]; description?: string | null; enabled?: boolean }): Promise<EndpointView> {
    const ep = await this.getEndpoint(user, id);
    if (patch.url !== undefined) await resolveTarget('url', patch.url, this.o.allowPrivate);
    const changes: Parameters<WebhookStore['updateEndpoint']>[1] = { updated_at: this.now() };
    if (patch.url !== undefined) changes.url = patch.url;
    if (patch.events !== undefined) changes.events = patch.events.length > 0 ? [...new Set(patch.events)] : [...WEBHOOK_EVENTS];
    if (patch.description !== undefined) changes.description = patch.description || null;
    if (patch.enabled === true) Object.assign(changes, { status: 'active', disabled_reason: null, consecutive_failures: 0 });
    if (patch.enabled === false) Object.assign(changes, { status: 'disabled', disabled_reason: 'disabled by its owner' });
    await this.o.store.updateEndpoint(ep.id, changes);
    return viewOf((await this.o.store.getEndpoint(user.id, id))!);
  }

  async deleteEndpoint(user: User, id: string): Promise<void> {
    if (!(await this.o.store.deleteEndpoint(user.id, id))) await this.getEndpoint(user, id);
  }

  async deliveries(user: User, id: string, limit: number): Promise<WebhookDeliveryRecord[]> {
    await this.getEndpoint(user, id);
    return this.o.store.listDeliveries(id, limit);
  }

  /** Sends a delivery again: it becomes pending now, with the same webhook-id (receivers deduplicate on it). */
  async redeliver(user: User, endpointId: string, deliveryId: string): Promise<WebhookDeliveryRecord> {
    await this.getEndpoint(user, endpointId);
    const d = await this.o.store.getDelivery(deliveryId);
    if (!d || d.endpoint_id !== endpointId || d.user_id !== user.id) {
      throw new AppError('WEBHOOK_NOT_FOUND', `Endpoint ${endpointId} has no delivery "${deliveryId.slice(0, 80)}"`, `List them with GET /api/v1/webhooks/${endpointId}/deliveries.`);
    }
    // The retry window and the backoff count from created_at and attempts, so a redelivery starts both afresh.
    const now = this.now();
    await this.o.store.updateDelivery(d.id, { status: 'pending', next_attempt_at: now, delivered_at: null, attempts: 0, created_at: now });
    const again = await this.o.store.getDelivery(d.id);
    // Deleted by the retention sweep between the read and the update.
    if (!again) throw new AppError('WEBHOOK_NOT_FOUND', `Endpoint ${endpointId} has no delivery "${deliveryId.slice(0, 80)}"`, `List them with GET /api/v1/webhooks/${endpointId}/deliveries.`);
    this.o.onQueued?.();
    return again;
  }

  /** Queues a `webhook.test` event to the endpoint; INVALID_STATE for a disabled one. */
  async test(user: User, id: string): Promise<WebhookDeliveryRecord> {
    const ep = await this.getEndpoint(user, id);
    if (ep.status === 'disabled') {
      throw new AppError('INVALID_STATE', `Webhook ${ep.id} is disabled: ${ep.disabled_reason ?? ''}`, `Enable it with PATCH /api/v1/webhooks/${ep.id} {"enabled": true} (mags webhook enable ${ep.id}).`);
    }
    const payload = { type: 'webhook.test', timestamp: this.now(), data: { endpoint_id: ep.id, message: 'This is a test delivery from your Mags server.' } };
    return this.enqueue(user.id, ep.id, null, ep.url, 'webhook.test', payload);
  }

  /** Turns a job's end into deliveries: its own webhook_url and the user's endpoints for the event. */
  async jobEnded(stale: Job, status: EndedStatus): Promise<void> {
    const job = (await this.o.jobs.getJob(stale.request_id)) ?? stale;
    const type: WebhookEvent = status === 'completed' ? 'job.completed' : status === 'sleeping' ? 'job.sleeping' : 'job.failed';
    const changes = job.workspace_id ? this.takeChanges(job.user_id, job.workspace_id) : null;
    const endpoints = (await this.o.store.listEndpoints(job.user_id)).filter((e) => e.status === 'active' && e.events.includes(type));
    if (!job.webhook_url && endpoints.length === 0) return;
    const payload = { type, timestamp: this.now(), data: { ...(await this.jobData(job, status)), changes } };
    if (job.webhook_url) await this.enqueue(job.user_id, null, job.request_id, job.webhook_url, type, payload);
    for (const e of endpoints) await this.enqueue(job.user_id, e.id, job.request_id, e.url, type, payload);
  }

  /** Keeps a sync's changes for the workspace's next job event and tells endpoints about the sync. */
  async workspaceSynced(e: WorkspaceSynced): Promise<void> {
    const k = `${e.userId}/${e.workspace}`;
    this.pendingChanges.set(k, mergeChanges(this.pendingChanges.get(k), e.changes));
    const endpoints = (await this.o.store.listEndpoints(e.userId)).filter((x) => x.status === 'active' && x.events.includes('workspace.synced'));
    if (endpoints.length === 0) return;
    const payload = { type: 'workspace.synced', timestamp: this.now(), data: { workspace_id: e.workspace, version: e.version ?? null, changes: e.changes } };
    for (const x of endpoints) await this.enqueue(e.userId, x.id, null, x.url, 'workspace.synced', payload);
  }

  private takeChanges(userId: string, workspace: string): ChangeSet {
    const k = `${userId}/${workspace}`;
    const c = this.pendingChanges.get(k) ?? { added: [], modified: [], deleted: [], truncated: false };
    this.pendingChanges.delete(k);
    return c;
  }

  private async jobData(job: Job, status: EndedStatus): Promise<Record<string, unknown>> {
    const max = await this.o.logs.maxSeq(job.request_id);
    const lines = max > 0 ? await this.o.logs.read(job.request_id, Math.max(0, max - OUTPUT_TAIL_LINES), OUTPUT_TAIL_LINES) : [];
    return {
      request_id: job.request_id,
      name: job.name,
      status,
      exit_code: job.exit_code,
      end_reason: job.end_reason,
      error_message: job.error_message,
      duration_ms: job.script_duration_ms,
      started_at: job.started_at,
      completed_at: job.completed_at,
      workspace_id: job.workspace_id,
      logs_url: `${this.o.publicUrl().replace(/\/+$/, '')}/api/v1/mags-jobs/${job.request_id}/logs`,
      output_tail: lines.map((l) => ({ stream: l.stream, message: l.message })),
    };
  }

  private async enqueue(userId: string, endpointId: string | null, jobId: string | null, url: string, type: string, payload: unknown): Promise<WebhookDeliveryRecord> {
    const now = this.now();
    const row: WebhookDeliveryRecord = {
      id: `msg_${randomBytes(12).toString('hex')}`,
      user_id: userId,
      endpoint_id: endpointId,
      job_id: jobId,
      url,
      event_type: type,
      payload: JSON.stringify(payload),
      status: 'pending',
      attempts: 0,
      next_attempt_at: now,
      last_attempt_at: null,
      last_status_code: null,
      last_error: null,
      last_response: null,
      delivered_at: null,
      created_at: now,
    };
    await this.o.store.insertDelivery(row);
    this.o.onQueued?.();
    return row;
  }
}

/** A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

function viewOf(e: WebhookEndpointRecord): EndpointView {
  const { secret: _secret, user_id: _user, ...view } = e;
  return view;
}

/** Folds a later sync's changes into earlier ones: added then deleted is nothing, deleted then added is modified. */
export function mergeChanges(a: ChangeSet | undefined, b: ChangeSet): ChangeSet {
  if (!a) return clipChanges(b);
  const state = new Map<string, { kind: 'added' | 'modified' | 'deleted'; size: number }>();
  for (const kind of ['added', 'modified', 'deleted'] as const) for (const f of a[kind]) state.set(f.path, { kind, size: f.size });
  for (const kind of ['added', 'modified', 'deleted'] as const) {
    for (const f of b[kind]) {
      const prev = state.get(f.path)?.kind;
      if (kind === 'deleted' && prev === 'added') state.delete(f.path);
      else if (kind === 'added' && prev === 'deleted') state.set(f.path, { kind: 'modified', size: f.size });
      else if (kind === 'modified' && prev === 'added') state.set(f.path, { kind: 'added', size: f.size });
      else state.set(f.path, { kind, size: f.size });
    }
  }
  const out: ChangeSet = { added: [], modified: [], deleted: [], truncated: a.truncated || b.truncated };
  for (const [path, { kind, size }] of state) out[kind].push({ path, size });
  return clipChanges(out);
}

function clipChanges(c: ChangeSet): ChangeSet {
  const over = c.added.length > MAX_CHANGES || c.modified.length > MAX_CHANGES || c.deleted.length > MAX_CHANGES;
  return { added: c.added.slice(0, MAX_CHANGES), modified: c.modified.slice(0, MAX_CHANGES), deleted: c.deleted.slice(0, MAX_CHANGES), truncated: c.truncated || over };
}
