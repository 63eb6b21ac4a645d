import { Webhook } from 'standardwebhooks';
import type { Logger } from 'pino';
import { AppError } from '../services/errors.js';
import type { WebhookDeliveryRecord, WebhookStore } from '../storage/metadata/webhooks.js';
import { systemClock, type Clock } from '../clock.js';
import { PassLoop } from '../pass-loop.js';
import { postJson, resolveTarget } from './target.js';


export interface DispatcherOptions {
  store: WebhookStore;
  log: Logger;
  clock?: Clock;
  /** Deliver to loopback/private addresses too (MAGS_WEBHOOK_ALLOW_PRIVATE). */
  allowPrivate: boolean;
  /** Whole-request limit (default 10 s). */
  timeoutMs?: number;
  /** Delay after the first failed attempt, doubling after each (default 10 s). */
  retryBaseMs?: number;
  /** Longest delay between attempts (default 2 h). */
  retryMaxMs?: number;
  /** How long after its creation a delivery is retried before it fails (default 24 h). */
  retryWindowMs?: number;
  /** Failed attempts in a row after which an endpoint is disabled (default 50). */
  disableAfterFailures?: number;
}

/** Stored answer bodies are cut to this many bytes. */
export const MAX_STORED_RESPONSE_BYTES = 4096;
/** How long a claimed attempt is reserved for the daemon that claimed it. */
const CLAIM_MS = 60_000;
/** The longest the timer sleeps before looking at the database again (deliveries other daemons queued). */
const MAX_SLEEP_MS = 60_000;
/** Deliveries claimed per round. */
const BATCH = 100;

/**
 * Sends stored deliveries: one timer for the earliest due attempt (no polling per delivery), a
 * compare-and-set claim per attempt so daemons sharing a database never send one attempt twice,
 * Standard Webhooks signatures, exponential backoff for `retryWindowMs`, endpoint disabling after
 * repeated failure. Deliveries live in the database, so a restart continues them.
 */
export class WebhookDispatcher {
  private readonly clock: Clock;
  private readonly loop: PassLoop;
  /** Attempts being sent. */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly o: DispatcherOptions) {
    this.clock = o.clock ?? systemClock;
    this.loop = new PassLoop({
      clock: this.clock,
      maxSleepMs: MAX_SLEEP_MS,
      round: () => this.sendDueBatch(),
      settle: () => this.o.store.nextDeliveryAt(),
      failed: (err) => this.o.log.error({ err }, 'webhook dispatcher pass failed; retrying in a minute'),
    });
  }

  start(): void {
    this.loop.start();
  }

  /** Stops the timer and waits for its passes and the attempts being sent. */
  async stop(): Promise<void> {
    await this.loop.stop();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Looks for due deliveries now (after a new one was stored). */
  kick(): void {
    this.loop.kick();
  }

  /** Sends every due delivery, then sleeps until the next one. */
  pass(): Promise<void> {
    return this.loop.pass();
  }

  /** Claims a batch of due deliveries and starts their attempts; true when the batch was full. */
  private async sendDueBatch(): Promise<boolean> {
    const now = new Date(this.clock.now()).toISOString();
    const due = await this.o.store.dueDeliveries(now, BATCH);
    for (const d of due) {
      const until = new Date(this.clock.now() + CLAIM_MS).toISOString();
      if (!(await this.o.store.claimDelivery(d.id, d.next_attempt_at!, until))) continue;
      const p = this.attempt(d).catch((err: unknown) => this.o.log.error({ err, delivery: d.id }, 'webhook attempt failed unexpectedly'));
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
    }
    return due.length === BATCH;
  }

  /** One attempt of a claimed delivery; stores the outcome and the next attempt. */
  async attempt(d: WebhookDeliveryRecord): Promise<void> {
    const at = this.clock.now();
    const attempts = d.attempts + 1;
    const { secret, refusal } = await this.secretOf(d);
    if (secret === undefined) {
      await this.o.store.updateDelivery(d.id, { status: 'failed', attempts, next_attempt_at: null, last_attempt_at: iso(at), last_error: refusal });
      return;
    }
    let status: number | null = null;
    let body = '';
    let error: string | null = null;
    let permanent = false;
    try {
      const target = await resolveTarget('url', d.url, this.o.allowPrivate);
      const signature = new Webhook(secret).sign(d.id, new Date(at), d.payload);
      const headers = { 'webhook-id': d.id, 'webhook-timestamp': String(Math.floor(at / 1000)), 'webhook-signature': signature };
      const r = await postJson(target, headers, d.payload, this.o.timeoutMs ?? 10_000, MAX_STORED_RESPONSE_BYTES);
      ({ status, body, error } = r);
      if (status !== null && (status < 200 || status >= 300) && !error) error = `HTTP ${status}`;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      permanent = err instanceof AppError && err.code === 'WEBHOOK_TARGET_REFUSED';
    }
    const ok = error === null && status !== null && status >= 200 && status < 300;
    const common = { attempts, last_attempt_at: iso(at), last_status_code: status, last_response: body === '' ? null : body, last_error: error };
    if (ok) {
      await this.o.store.updateDelivery(d.id, { ...common, status: 'delivered', next_attempt_at: null, delivered_at: iso(this.clock.now()) });
      if (d.endpoint_id) await this.o.store.updateEndpoint(d.endpoint_id, { consecutive_failures: 0 });
      this.o.log.debug({ delivery: d.id, status }, 'webhook delivered');
      return;
    }
    const delay = Math.min((this.o.retryBaseMs ?? 10_000) * 2 ** (attempts - 1), this.o.retryMaxMs ?? 2 * 3600_000);
    const next = this.clock.now() + delay;
    const giveUp = permanent || next > Date.parse(d.created_at) + (this.o.retryWindowMs ?? 24 * 3600_000);
    await this.o.store.updateDelivery(d.id, { ...common, status: giveUp ? 'failed' : 'pending', next_attempt_at: giveUp ? null : iso(next) });
    this.o.log.info({ delivery: d.id, url: d.url, status, error, attempts, giveUp }, 'webhook attempt failed');
    if (d.endpoint_id) await this.endpointFailed(d.endpoint_id, d.user_id, giveUp, error ?? 'failed');
    if (!giveUp) this.loop.wakeIn(delay);
  }

  private async endpointFailed(id: string, userId: string, gaveUp: boolean, error: string): Promise<void> {
    const ep = await this.o.store.getEndpoint(userId, id);
    if (!ep || ep.status === 'disabled') return;
    const failures = ep.consecutive_failures + 1;
    const limit = this.o.disableAfterFailures ?? 50;
    if (gaveUp || failures >= limit) {
      const reason = gaveUp ? `a delivery failed for the whole retry window; last error: ${error}` : `${failures} delivery attempts failed in a row; last error: ${error}`;
      await this.o.store.updateEndpoint(id, { status: 'disabled', disabled_reason: reason, consecutive_failures: failures, updated_at: iso(this.clock.now()) });
      this.o.log.warn({ endpoint: id, reason }, 'webhook endpoint disabled');
      return;
    }
    await this.o.store.updateEndpoint(id, { consecutive_failures: failures });
  }

  /** The key that signs this delivery, or why it cannot be sent. */
  private async secretOf(d: WebhookDeliveryRecord): Promise<{ secret?: string; refusal: string }> {
    if (d.endpoint_id) {
      const ep = await this.o.store.getEndpoint(d.user_id, d.endpoint_id);
      if (!ep) return { refusal: 'the endpoint was deleted' };
      if (ep.status === 'disabled') return { refusal: `the endpoint is disabled: ${ep.disabled_reason ?? ''}` };
      return { secret: ep.secret, refusal: '' };
    }
    const key = await this.o.store.getSigningKey(d.user_id);
    return key ? { secret: key, refusal: '' } : { refusal: 'the signing key is gone' };
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
