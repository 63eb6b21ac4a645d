import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { ConfigError, type ServerConfig } from '../config.js';
import type { LiveSandboxes } from '../sandboxes/live.js';
import type { UrlService } from '../services/urls.js';
import type { ProxyMetrics } from './metrics.js';
import { PublicProxy } from './server.js';

/** A listening public-URL proxy. */
export interface RunningProxy {
  proxy: PublicProxy;
  /** The bound port. */
  port: number;
  close(): Promise<void>;
}

/** Starts the proxy role from the server configuration (MAGS_PROXY_*, MAGS_DOMAIN). */
export async function startPublicProxy(config: ServerConfig, deps: { urls: UrlService; live: LiveSandboxes; log: Logger; metrics?: ProxyMetrics }): Promise<RunningProxy> {
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (config.proxyTlsCert && config.proxyTlsKey) {
    try {
      tls = { cert: await readFile(config.proxyTlsCert), key: await readFile(config.proxyTlsKey) };
    } catch (err) {
      throw new ConfigError(`cannot read MAGS_PROXY_TLS_CERT/MAGS_PROXY_TLS_KEY: ${(err as Error).message}; give readable PEM files or unset both.`);
    }
  }
  let proxy: PublicProxy;
  try {
    proxy = new PublicProxy({ urls: deps.urls, live: deps.live, domain: config.domain, wakeTimeoutMs: config.proxyWakeTimeoutSeconds * 1000, log: deps.log, metrics: deps.metrics, tls });
  } catch (err) {
    if (!tls) throw err;
    throw new ConfigError(`MAGS_PROXY_TLS_CERT/MAGS_PROXY_TLS_KEY are not a matching PEM certificate and key: ${(err as Error).message}`);
  }
  let port: number;
  try {
    port = await proxy.listen(config.proxyHost, config.proxyPort);
  } catch (err) {
    if ((err as { code?: string }).code === 'EADDRINUSE') {
      throw new ConfigError(`proxy port ${config.proxyPort} on ${config.proxyHost} is already in use; stop the other server or set MAGS_PROXY_PORT (0 picks a free port).`);
    }
    throw err;
  }
  return { proxy, port, close: () => proxy.close() };
}
