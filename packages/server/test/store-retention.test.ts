import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { composeControlPlane } from '../src/compose.js';
import { silentLogger } from '../src/logger.js';
import { KEEP_NEWEST } from '../src/services/retention.js';
import type { ScheduleRecord, ScheduleRunRecord } from '../src/storage/metadata/cron.js';
import type { DeliveryStatus, WebhookDeliveryRecord } from '../src/storage/metadata/webhooks.js';
import type { Stores } from '../src/storage/stores.js';
import { LocalLayers } from '../src/workspaces/local-layers.js';
import { FakePool } from './helpers/fake-runtime.js';
import { STORE_BACKENDS } from './helpers/stores.js';

const DAY = 86_400_000;
const NOW = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();
const OLD = NOW - 40 * DAY;
const CUTOFF = iso(NOW - 30 * DAY);

function schedule(id: string, userId: string): ScheduleRecord {
  return {
    id, user_id: userId, name: id, cron_expression: '* * * * *', timezone: 'UTC', script: 'true', job_options: {}, enabled: false,
    overlap: 'skip', catch_up: 'one', jitter_seconds: 0, next_run_at: null, due_at: null, last_run_at: null, created_at: iso(OLD), updated_at: iso(OLD),
  };
}

/** `outcomes[i]` is the firing at minute i after `from`, recorded then. */
async function runs(stores: Stores, scheduleId: string, from: number, outcomes: Array<ScheduleRunRecord['outcome']>): Promise<void> {
  for (const [i, outcome] of outcomes.entries()) {
    const at = iso(from + i * 60_000);
    await stores.cron.insertRun({ schedule_id: scheduleId, scheduled_for: at, trigger: 'schedule', outcome, job_id: outcome === 'submitted' ? `job-${scheduleId}-${i}` : null, message: null, created_at: at });
  }
}

/** `statuses[i]` is the delivery created at minute i after `from`. */
async function deliveries(stores: Stores, userId: string, endpointId: string | null, from: number, statuses: DeliveryStatus[]): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, status] of statuses.entries()) {
    const at = iso(from + i * 60_000);
    const id = `msg_${endpointId ?? 'own'}_${String(i).padStart(3, '0')}`;
    const row: WebhookDeliveryRecord = {
      id, user_id: userId, endpoint_id: endpointId, job_id: null, url: 'https://example.com/hook', event_type: 'job.completed', payload: '{}', status,
      attempts: 1, next_attempt_at: status === 'pending' ? iso(NOW + 60_000) : null, last_attempt_at: at, last_status_code: null, last_error: null,
      last_response: null, delivered_at: status === 'delivered' ? at : null, created_at: at,
    };
    await stores.webhooks.insertDelivery(row);
    ids.push(id);
  }
  return ids;
}

async function endpoint(stores: Stores, userId: string, id: string): Promise<void> {
  await stores.webhooks.insertEndpoint({
    id, user_id: userId, url: 'https://example.com/hook', description: null, events: ['job.completed'], secret: 'whsec_x', status: 'active',
    disabled_reason: null, consecutive_failures: 0, created_at: iso(OLD), updated_at: iso(OLD),
  });
}

const scheduledTimes = async (stores: Stores, id: string) => (await stores.cron.listRuns(id, 10_000)).map((r) => r.scheduled_for).sort();
const deliveryIds = async (stores: Stores, endpointId: string) => (await stores.webhooks.listDeliveries(endpointId, 10_000)).map((d) => d.id).sort();

/**
 * Retention of schedule firings and webhook deliveries on each metadata driver (SQLite and a
 * throwaway PostgreSQL): what is older than the cutoff goes, except each schedule's and endpoint's
 * newest `KEEP_NEWEST`, a schedule's newest submitting firing, queued firings and pending deliveries.
 */
for (const backend of STORE_BACKENDS) {
  describe(`retention of firings and deliveries (${backend.name})`, () => {
    it('prunes old firings but keeps the newest per schedule, the newest submitted one and queued ones', async () => {
      const b = await backend.open();
      try {
        const { stores } = b;
        await stores.users.createUser({ id: 'u1', name: 'u1', admin: false, created_at: iso(OLD) });
        for (const id of ['busy', 'rare', 'recent']) await stores.cron.insertSchedule(schedule(id, 'u1'));
        // busy: 80 old firings; the oldest two submitted jobs, the third waits (queued), the rest were skipped.
        const busy: Array<ScheduleRunRecord['outcome']> = ['submitted', 'submitted', 'queued', 'failed', ...Array<'skipped'>(76).fill('skipped')];
        await runs(stores, 'busy', OLD, busy);
        await runs(stores, 'rare', OLD, ['submitted', 'skipped', 'failed']);
        await runs(stores, 'recent', NOW - DAY, Array<'skipped'>(80).fill('skipped'));
        const before = await scheduledTimes(stores, 'busy');

        const deleted = await stores.cron.pruneRuns(CUTOFF, KEEP_NEWEST);
        // Kept of busy: the newest 50 (indexes 30..79), index 1 (its newest submitted), index 2 (queued).
        const kept = [before[1], before[2], ...before.slice(30)];
        assert.deepEqual(await scheduledTimes(stores, 'busy'), kept);
        assert.equal(deleted, 80 - kept.length);
        assert.equal((await stores.cron.lastSubmittedRun('busy'))?.job_id, 'job-busy-1', 'the overlap policy still finds the newest job');
        assert.equal((await stores.cron.queuedRun('busy'))?.scheduled_for, before[2]);
        assert.equal((await scheduledTimes(stores, 'rare')).length, 3, 'fewer than the newest 50: all stay');
        assert.equal((await scheduledTimes(stores, 'recent')).length, 80, 'younger than the cutoff: all stay');
        assert.equal(await stores.cron.pruneRuns(CUTOFF, KEEP_NEWEST), 0, 'a second sweep finds nothing');
      } finally {
        await b.cleanup();
      }
    });

    it('prunes old finished deliveries but never a pending one, and keeps the newest per endpoint', async () => {
      const b = await backend.open();
      try {
        const { stores } = b;
        await stores.users.createUser({ id: 'u1', name: 'u1', admin: false, created_at: iso(OLD) });
        await endpoint(stores, 'u1', 'ep_old');
        await endpoint(stores, 'u1', 'ep_new');
        // ep_old: 70 old deliveries; the oldest 3 still pending (one of them claimed: being sent now).
        const statuses: DeliveryStatus[] = ['pending', 'pending', 'pending', ...Array<'failed'>(7).fill('failed'), ...Array<'delivered'>(60).fill('delivered')];
        const ids = await deliveries(stores, 'u1', 'ep_old', OLD, statuses);
        assert.ok(await stores.webhooks.claimDelivery(ids[0]!, iso(NOW + 60_000), iso(NOW + 120_000)));
        await deliveries(stores, 'u1', 'ep_new', NOW - DAY, Array<'failed'>(60).fill('failed'));
        // A job's own webhook_url (no endpoint): 55 old, delivered.
        await deliveries(stores, 'u1', null, OLD, Array<'delivered'>(55).fill('delivered'));

        const deleted = await stores.webhooks.pruneDeliveries(CUTOFF, KEEP_NEWEST);
        const kept = [...ids.slice(0, 3), ...ids.slice(20)];
        assert.deepEqual(await deliveryIds(stores, 'ep_old'), kept);
        assert.equal((await stores.webhooks.getDelivery(ids[0]!))?.status, 'pending', 'the delivery being sent stays');
        assert.equal((await deliveryIds(stores, 'ep_new')).length, 60, 'younger than the cutoff: all stay');
        assert.equal(await stores.webhooks.getDelivery('msg_own_004'), undefined, 'old deliveries to jobs\' own URLs go too');
        assert.ok(await stores.webhooks.getDelivery('msg_own_005'));
        assert.equal(deleted, 17 + 5);
        assert.equal((await stores.webhooks.dueDeliveries(iso(NOW + 90_000), 10)).length, 2, 'the unclaimed pending deliveries are still due');
        assert.equal(await stores.webhooks.pruneDeliveries(CUTOFF, KEEP_NEWEST), 0);
      } finally {
        await b.cleanup();
      }
    });

    it('the control plane sweeps at start with the settings (0 keeps everything)', async () => {
      const b = await backend.open();
      const dir = await mkdtemp(join(tmpdir(), 'mags-retention-'));
      try {
        const { stores } = b;
        await stores.users.createUser({ id: 'u1', name: 'u1', admin: false, created_at: iso(OLD) });
        await stores.cron.insertSchedule(schedule('busy', 'u1'));
        await runs(stores, 'busy', OLD, Array<'skipped'>(60).fill('skipped'));
        await endpoint(stores, 'u1', 'ep');
        await deliveries(stores, 'u1', 'ep', OLD, Array<'delivered'>(60).fill('delivered'));
        const plane = async (settings: { cronRetentionDays?: number; webhookRetentionDays?: number }) => {
          const pool = new FakePool();
          try {
            const p = await composeControlPlane({
              stores,
              pool,
              log: silentLogger(),
              workspaces: { layers: new LocalLayers(join(dir, 'ws')), imageVersion: () => 'test' },
              settings: { jobTimeoutSeconds: 30, maxOutputBytes: 100_000, maxConcurrentJobs: 2, ...settings },
            });
            await p.start();
            await p.close();
          } finally {
            await pool.stop();
          }
        };
        await plane({ cronRetentionDays: 0, webhookRetentionDays: 0 });
        assert.equal((await scheduledTimes(stores, 'busy')).length, 60);
        assert.equal((await deliveryIds(stores, 'ep')).length, 60);
        await plane({ webhookRetentionDays: 0 }); // firings: the default, 30 days
        assert.equal((await scheduledTimes(stores, 'busy')).length, KEEP_NEWEST);
        assert.equal((await deliveryIds(stores, 'ep')).length, 60);
        await plane({ webhookRetentionDays: 45 });
        assert.equal((await deliveryIds(stores, 'ep')).length, 60, '40 days old, kept for 45');
        await plane({ webhookRetentionDays: 39 });
        assert.equal((await deliveryIds(stores, 'ep')).length, KEEP_NEWEST);
      } finally {
        await b.cleanup();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
