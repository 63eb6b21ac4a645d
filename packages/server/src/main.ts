/**
 * Composition root: the only file that picks concrete drivers (SQLite/PostgreSQL store, container
 * runtime, warm pool) and starts listeners. `node dist/src/main.js` runs the daemon;
 * `node dist/src/main.js image build [--force]` only builds the sandbox image.
 */
import { existsSync, statfsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { JOB_LIMITS } from '@mags/shared';
import type { Logger } from 'pino';
import { composeControlPlane } from './compose.js';
import { Metrics } from './services/metrics.js';
import { SshRole } from './ssh/role.js';
import { ConfigError, loadConfig, parseServerFlags, redact, type ConfigOverrides, type ServerConfig } from './config.js';
import { createLogger } from './logger.js';
import { parentLimits, readHostFacts } from './runtime/drivers/container/host-limits.js';
import { Admission, type HostCapacity } from './services/admission.js';
import type { RuntimeDriver, SandboxPool } from './runtime/driver.js';
import { createRuntimeDriver } from './runtime/registry.js';
import { ID_BASE, buildImage, findImage } from './runtime/image.js';
import { instancePrefix } from './host/instance.js';
import { createPool } from './scheduler/pool.js';
import { DEFAULT_PIDS_LIMIT } from './scheduler/scheduler.js';
import { secureDataDir, writeAdminToken, writeClientConfig } from './services/bootstrap.js';
import { createBlobStore, type BlobStore } from './storage/blobs/index.js';
import { WorkspaceSync } from './workspaces/sync/index.js';
import { openStores } from './storage/stores.js';
import { startPublicProxy } from './proxy/index.js';
import { ProxyCounters } from './proxy/metrics.js';
import { createUrlService } from './services/urls.js';
import { LocalLayers } from './workspaces/local-layers.js';

/** packages/server/dist/src -> packages/web/dist: the dashboard the root `npm run build` makes. */
const DEFAULT_WEB_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'web', 'dist');

/** A started server. */
export interface RunningServer {
  config: ServerConfig;
  /** Base URL of the API with the real bound port. */
  url: string;
  /** The public-URL proxy's bound port. */
  proxyPort: number;
  /** Answers of the public-URL proxy by status class (for a metrics exporter). */
  proxyMetrics: ProxyCounters;
  /** Clean shutdown: stop accepting, end running jobs, free sandboxes, close the database. */
  close(): Promise<void>;
}

export interface RunServerOptions {
  /** Overrides of env vars (flags of `mags server`). */
  overrides?: ConfigOverrides;
  /** Environment to read (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Print the ready line on stdout (default true). */
  announce?: boolean;
}

/** Builds the sandbox base image (when missing, or always with `force`), progress on stderr. */
export async function buildBaseImage(config: ServerConfig, log: Logger, force = false): Promise<{ version: string; path: string }> {
  const existing = force ? null : findImage(config.imageDir);
  if (existing) {
    log.info({ version: existing.version, path: existing.path }, 'sandbox image is ready');
    return existing;
  }
  await mkdir(config.imageDir, { recursive: true });
  log.info({ imageDir: config.imageDir }, 'building the sandbox base image (the first build downloads Debian packages: several minutes)');
  const image = await buildImage({
    imageDir: config.imageDir,
    force,
    mirror: config.debianMirror,
    log: log.child({ component: 'image' }),
    // A person at a terminal reads plain lines; a service manager's journal gets structured ones.
    onProgress: process.stderr.isTTY
      ? (message) => process.stderr.write(`  image: ${message}\n`)
      : (message) => log.info({ component: 'image' }, message),
  });
  log.info({ version: image.version, path: image.path }, 'sandbox image built');
  return image;
}

/** Sandbox memory (the parent cgroup's: host memory less the reserve), CPUs, and the data dir's free space. */
async function hostCapacity(dataDir: string): Promise<HostCapacity> {
  const facts = await readHostFacts();
  return {
    memoryMb: Math.floor(parentLimits(facts).memoryBytes / 1024 ** 2),
    vcpus: facts.cpus,
    freeDiskGb: () => {
      const fs = statfsSync(dataDir);
      return (fs.bavail * fs.bsize) / 1024 ** 3;
    },
  };
}

/** Opens the blob store the configuration names (`file`: a directory; `s3`: a bucket). */
async function openBlobStore(config: ServerConfig, log: Logger): Promise<BlobStore> {
  if (config.blobStore === 's3') {
    return createBlobStore({
      driver: 's3',
      bucket: config.s3Bucket!,
      endpoint: config.s3Endpoint,
      prefix: config.s3Prefix,
      region: config.s3Region,
      forcePathStyle: config.s3ForcePathStyle,
    });
  }
  return createBlobStore({ driver: 'fs', root: config.blobDir, log: log.child({ component: 'blobs' }) });
}

/** Starts the daemon: store, runtime, pool, scheduler, HTTP API. */
export async function runServer(opts: RunServerOptions | ConfigOverrides = {}): Promise<RunningServer> {
  const o: RunServerOptions = 'overrides' in opts || 'env' in opts || 'announce' in opts ? (opts as RunServerOptions) : { overrides: opts as ConfigOverrides };
  const config = loadConfig(o.env ?? process.env, o.overrides ?? {});
  const log = createLogger(config.logLevel);
  log.info({ dataDir: config.dataDir, imageDir: config.imageDir, runtime: config.runtime, database: config.databaseUrl ? redact(config.databaseUrl) : 'sqlite' }, 'starting mags server');
  for (const warning of config.warnings) log.warn(warning);
  await secureDataDir({ dataDir: config.dataDir, blobDir: config.blobDir, sqlite: !config.databaseUrl });

  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        log.error({ err }, 'shutdown step failed');
      }
    }
    cleanups.length = 0;
  };

  try {
    const stores = await openStores({ url: config.databaseUrl, sqlitePath: join(config.dataDir, 'mags.db') });
    cleanups.push(() => stores.close());
    if (stores.migrated.length > 0) log.info({ migrations: stores.migrated }, 'database migrated');

    const blobs = await openBlobStore(config, log);
    cleanups.push(() => blobs.close());
    log.info({ driver: blobs.driver, ...(config.blobStore === 's3' ? { bucket: config.s3Bucket, endpoint: config.s3Endpoint } : { dir: config.blobDir }) }, 'blob store');

    const image = await buildBaseImage(config, log);
    const driverOptions = {
      dataDir: config.dataDir,
      imageDir: config.imageDir,
      instance: instancePrefix(config.dataDir),
      log: log.child({ component: 'runtime' }),
      debianMirror: config.debianMirror,
      capacity: { maxSandboxes: config.maxConcurrentJobs + config.poolMaxSize, pidsPerSandbox: DEFAULT_PIDS_LIMIT },
      cpuset: config.sandboxCpuset === 'pin',
    };
    const driver: RuntimeDriver = await createRuntimeDriver(config.runtime, driverOptions);
    cleanups.push(() => driver.shutdown());
    await driver.init((message) => log.info({ component: 'runtime' }, message));
    const pool: SandboxPool = createPool(driver, {
      minSize: config.poolMinSize,
      maxSize: config.poolMaxSize,
      defaultLimits: { vcpus: JOB_LIMITS.defaultVcpus, memoryMb: JOB_LIMITS.defaultMemoryMb, diskGb: JOB_LIMITS.defaultDiskGb, pids: DEFAULT_PIDS_LIMIT },
      log: log.child({ component: 'pool' }),
    });
    cleanups.push(() => pool.stop());
    pool.start();

    const capacity = await hostCapacity(config.dataDir);
    const admission = new Admission(capacity, { memory: config.memoryOvercommit, cpu: config.cpuOvercommit, disk: config.diskOvercommit });
    log.info({ memoryMb: capacity.memoryMb, vcpus: capacity.vcpus, freeDiskGb: Math.floor(capacity.freeDiskGb()) }, 'admission: what this host gives sandboxes');
    let proxyPort: number | undefined;
    const urls = createUrlService(
      stores,
      { domain: config.domain, scheme: config.proxyPublicScheme, publicPort: () => config.proxyPublicPort ?? proxyPort },
      log.child({ component: 'urls' }),
    );
    const layers = new LocalLayers(join(config.dataDir, 'workspaces'));
    cleanups.push(() => layers.shutdown());
    const metrics = new Metrics();
    // Known once the API listens (MAGS_PORT=0 picks the port).
    let publicUrl = `http://${config.host}:${config.port}`;
    const ssh =
      config.sshPort !== undefined
        ? new SshRole({
            keys: stores.sshKeys,
            jobs: stores.jobs,
            dataDir: config.dataDir,
            log: log.child({ component: 'ssh' }),
            publicHost: config.sshHost,
            limits: { idleTimeoutMs: config.sshIdleTimeoutSeconds * 1000, maxConnectionsPerUser: config.sshMaxConnectionsPerUser },
          })
        : undefined;
    const plane = await composeControlPlane({
      stores,
      pool,
      log,
      admission,
      blobs,
      metrics,
      urls,
      access: { ssh: ssh?.grant, url: urls },
      workspaces: {
        layers,
        syncer: new WorkspaceSync({
          blobs,
          log: log.child({ component: 'workspace-sync' }),
          idShift: ID_BASE,
          historyLimit: config.workspaceHistory,
          cacheDir: join(config.dataDir, 'sync-cache'),
          onSyncDone: (outcome, seconds) => metrics.workspaceSynced(outcome, seconds),
        }),
        syncIntervalSeconds: config.syncIntervalSeconds,
        imageVersion: () => image.version,
        hasImage: (version) => /^[0-9a-f]{6,64}$/.test(version) && existsSync(join(config.imageDir, version, 'rootfs.erofs')),
      },
      settings: {
        jobTimeoutSeconds: config.jobTimeoutSeconds,
        maxOutputBytes: config.maxOutputBytes,
        logRetentionDays: config.logRetentionDays,
        cronRetentionDays: config.cronRetentionDays,
        webhookRetentionDays: config.webhookRetentionDays,
        maxConcurrentJobs: config.maxConcurrentJobs,
        maxRunningJobsPerUser: config.maxRunningJobsPerUser,
        maxPendingJobsPerUser: config.maxPendingJobsPerUser,
        bodyLimitBytes: config.bodyLimitBytes,
        maxUploadBytes: config.maxUploadBytes,
        sessionTtlHours: config.sessionTtlHours,
        webDir: config.webDir ?? DEFAULT_WEB_DIR,
        trustProxy: config.trustProxy,
        metricsToken: config.metricsToken,
        usageCheckpointSeconds: config.usageCheckpointSeconds,
        filesMaxBytes: config.filesMaxBytes,
        freezeAfterSeconds: config.freezeAfterSeconds,
        sleepAfterSeconds: config.sleepAfterSeconds,
        idleCpuPercent: config.idleCpuPercent,
        idleNetBytesPerSecond: config.idleNetBytesPerSecond,
        wakeTimeoutSeconds: config.wakeTimeoutSeconds,
        webhookAllowPrivate: config.webhookAllowPrivate,
        publicUrl: () => config.apiPublicUrl ?? publicUrl,
      },
    });
    cleanups.push(() => plane.close());
    const { app, users } = plane;
    const admin = await users.bootstrapAdmin();
    if (admin) await writeAdminToken({ dataDir: config.dataDir, token: admin.token, log });
    await plane.start();
    if (ssh && config.sshPort !== undefined) {
      let sshPort: number;
      try {
        sshPort = await ssh.listen(plane.live, config.sshPort, config.host);
      } catch (err) {
        if ((err as { code?: string }).code === 'EADDRINUSE') {
          throw new ConfigError(`SSH port ${config.sshPort} on ${config.host} is already in use; set MAGS_SSH_PORT to a free port (0 picks one).`);
        }
        throw err;
      }
      cleanups.push(() => ssh.close());
      log.info({ host: config.host, port: sshPort }, 'SSH gateway listening');
    }
    const proxyMetrics = new ProxyCounters();
    const proxy = await startPublicProxy(config, { urls, live: plane.live, log: log.child({ component: 'proxy' }), metrics: proxyMetrics });
    cleanups.push(() => proxy.close());
    proxyPort = proxy.port;
    log.info({ host: config.proxyHost, port: proxy.port, domain: config.domain, tls: !!config.proxyTlsCert, example: urls.urlOf('<sub>') }, 'public-URL proxy listening');

    try {
      await app.listen({ host: config.host, port: config.port });
    } catch (err) {
      if ((err as { code?: string }).code === 'EADDRINUSE') {
        throw new ConfigError(`port ${config.port} on ${config.host} is already in use; stop the other server or set MAGS_PORT (0 picks a free port).`);
      }
      throw err;
    }
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.port;
    const url = `http://127.0.0.1:${port}`;
    publicUrl = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    if (admin) await writeClientConfig({ home: config.home, token: admin.token, apiUrl: url, log });
    log.info({ url, host: config.host, port }, 'listening');
    if (o.announce !== false) {
      process.stdout.write(`Mags proxy ready at ${config.proxyTlsCert ? 'https' : 'http'}://${config.proxyHost}:${proxy.port} (public URLs: ${urls.urlOf('<sub>')})\n`);
      process.stdout.write(`Mags server ready at ${url}\n`);
    }
    return { config, url, proxyPort: proxy.port, proxyMetrics, close: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The `main.js` command line: `image build [--force]`, or the daemon with `mags server` flags. */
export async function main(argv: string[]): Promise<number> {
  process.on('unhandledRejection', (reason) => {
    process.stderr.write(JSON.stringify({ level: 'error', msg: 'unhandled promise rejection', err: String((reason as Error)?.stack ?? reason) }) + '\n');
  });
  try {
    if (argv[0] === 'image') {
      if (argv[1] !== 'build') throw new ConfigError('usage: main.js image build [--force]');
      const force = argv.slice(2).includes('--force');
      const config = loadConfig(process.env, {});
      await buildBaseImage(config, createLogger(config.logLevel), force);
      return 0;
    }
    const server = await runServer({ overrides: parseServerFlags(argv) });
    await new Promise<void>((resolveSignal) => {
      const onSignal = (signal: NodeJS.Signals) => {
        process.stderr.write(JSON.stringify({ level: 'info', msg: `received ${signal}, shutting down` }) + '\n');
        resolveSignal();
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    });
    const guard = setTimeout(() => {
      process.stderr.write(JSON.stringify({ level: 'error', msg: 'shutdown took longer than 30 s; exiting anyway' }) + '\n');
      process.exit(1);
    }, 30_000);
    guard.unref();
    await server.close();
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mags server: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`mags server failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`mags server: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
