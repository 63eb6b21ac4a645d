/** Status classes the proxy counts answers by. */
export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';

/** Where the proxy counts what it answered; a Prometheus exporter can read a `ProxyCounters`. */
export interface ProxyMetrics {
  /** One proxied request (or WebSocket upgrade) ended with this HTTP status. */
  countResponse(status: number): void;
}

/** Counts in memory by status class; `snapshot()` for exporters and tests. */
export class ProxyCounters implements ProxyMetrics {
  private readonly counts: Record<StatusClass, number> = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };

  countResponse(status: number): void {
    const cls = `${Math.min(5, Math.max(1, Math.floor(status / 100)))}xx` as StatusClass;
    this.counts[cls]++;
  }

  snapshot(): Readonly<Record<StatusClass, number>> {
    return { ...this.counts };
  }
}
