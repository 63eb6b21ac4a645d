import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { JobStatus } from '@mags/shared';
import { JOB_STATUSES } from '@mags/shared';
import type { PoolStatus } from '../runtime/driver.js';

/** What the metrics read when scraped (the numbers live elsewhere). */
export interface MetricsSources {
  jobsByStatus(): Promise<Partial<Record<JobStatus, number>>>;
  scheduler(): { running: number; queued: number };
  pool(): PoolStatus;
}

/**
 * The daemon's Prometheus metrics (docs/metrics.md lists each). Counters and histograms are fed by
 * the parts that do the work (scheduler, workspace sync, proxy) through the small methods below;
 * gauges are read from their sources at scrape time. One registry per daemon (not prom-client's
 * global one), so tests can run several servers in one process.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly sandboxStart: Histogram<'warm'>;
  private readonly jobDuration: Histogram<'status'>;
  private readonly syncDuration: Histogram<'outcome'>;
  private readonly proxyRequests: Counter<'code'>;
  private readonly httpRequests: Counter<'method' | 'code'>;
  private sources: MetricsSources | undefined;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'mags_' });
    this.sandboxStart = new Histogram({
      name: 'mags_sandbox_start_seconds',
      help: 'Time from a job leaving the queue to its sandbox being ready, by whether it came from the warm pool',
      labelNames: ['warm'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.jobDuration = new Histogram({
      name: 'mags_job_duration_seconds',
      help: 'Script run time of ended jobs, by final status',
      labelNames: ['status'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
    this.syncDuration = new Histogram({
      name: 'mags_workspace_sync_seconds',
      help: 'Duration of workspace syncs to the blob store, by outcome',
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.proxyRequests = new Counter({ name: 'mags_proxy_requests_total', help: 'Requests through the URL proxy, by status class (2xx, 3xx, 4xx, 5xx)', labelNames: ['code'], registers });
    this.httpRequests = new Counter({ name: 'mags_api_requests_total', help: 'API requests answered, by method and status class', labelNames: ['method', 'code'], registers });
    const self = this;
    new Gauge({
      name: 'mags_jobs',
      help: 'Jobs in the database, by status',
      labelNames: ['status'],
      registers,
      async collect() {
        if (!self.sources) return;
        const counts = await self.sources.jobsByStatus();
        for (const s of JOB_STATUSES) this.set({ status: s }, counts[s] ?? 0);
      },
    });
    new Gauge({
      name: 'mags_queue_length',
      help: 'Jobs waiting for a run slot',
      registers,
      collect() {
        if (self.sources) this.set(self.sources.scheduler().queued);
      },
    });
    new Gauge({
      name: 'mags_running_jobs',
      help: 'Jobs holding a run slot',
      registers,
      collect() {
        if (self.sources) this.set(self.sources.scheduler().running);
      },
    });
    new Gauge({
      name: 'mags_pool_sandboxes',
      help: 'Sandboxes of the warm pool, by state (idle, busy)',
      labelNames: ['state'],
      registers,
      collect() {
        if (!self.sources) return;
        const p = self.sources.pool();
        this.set({ state: 'idle' }, p.idle_vms);
        this.set({ state: 'busy' }, p.busy_vms);
      },
    });
  }

  /** Where the scrape-time gauges read from (set once the daemon's parts exist). */
  setSources(sources: MetricsSources): void {
    this.sources = sources;
  }

  sandboxReady(warm: boolean, seconds: number): void {
    this.sandboxStart.observe({ warm: String(warm) }, seconds);
  }

  jobEnded(status: string, seconds: number): void {
    this.jobDuration.observe({ status }, seconds);
  }

  workspaceSynced(outcome: 'ok' | 'failed', seconds: number): void {
    this.syncDuration.observe({ outcome }, seconds);
  }

  proxyRequest(statusCode: number): void {
    this.proxyRequests.inc({ code: statusClass(statusCode) });
  }

  apiRequest(method: string, statusCode: number): void {
    this.httpRequests.inc({ method, code: statusClass(statusCode) });
  }

  /** The Prometheus text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

function statusClass(code: number): string {
  return `${Math.floor(code / 100)}xx`;
}
