import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_RUNTIME, RUNTIME_NAMES, type RuntimeName } from './runtime/registry.js';

/**
 * Server configuration: read and validated once at start from env vars and `mags server` flags.
 * Nothing else in the server reads `process.env`; everything gets a `ServerConfig`.
 * Precedence: explicit override (flag or object) > env var > default.
 */
export interface ServerConfig {
  dataDir: string;
  /** The built dashboard (absent: packages/web/dist of this installation). */
  webDir?: string;
  /** Believe X-Forwarded-* headers (a TLS-terminating proxy in front). */
  trustProxy: boolean;
  /** Lifetime of a dashboard session. */
  sessionTtlHours: number;
  host: string;
  port: number;
  /** Absent = SQLite file `mags.db` in the data dir; `postgres://...` = PostgreSQL. */
  databaseUrl?: string;
  imageDir: string;
  poolMinSize: number;
  poolMaxSize: number;
  jobTimeoutSeconds: number;
  maxOutputBytes: number;
  /** Days a finished job's output lines are kept; 0 = forever. */
  logRetentionDays: number;
  /** Days a schedule's firings are kept (its newest 50 always); 0 = forever. */
  cronRetentionDays: number;
  /** Days finished webhook deliveries are kept (each endpoint's newest 50 always); 0 = forever. */
  webhookRetentionDays: number;
  maxConcurrentJobs: number;
  maxPendingJobsPerUser: number;
  /** Jobs of one user running at once (fair share of MAGS_MAX_CONCURRENT_JOBS). */
  maxRunningJobsPerUser: number;
  /** Sum of running jobs' memory_mb may reach this multiple of the host's sandbox memory. */
  memoryOvercommit: number;
  /** Sum of running jobs' vcpus may reach this multiple of the host's CPUs. */
  cpuOvercommit: number;
  /** Sum of running jobs' disk_gb may reach this multiple of the data dir's free space. */
  diskOvercommit: number;
  /** `pin`: each sandbox's cpuset is ceil(vcpus) CPUs (nproc matches); `off`: every CPU, only the quota. */
  sandboxCpuset: 'pin' | 'off';
  logLevel: LogLevelName;
  /** Debian mirror for the image build; absent = the image builder's default. */
  debianMirror?: string;
  /** Runtime driver name from the registry in runtime/registry.ts. */
  runtime: RuntimeName;
  /** The HOME of the user running the server (for `~/.mags/config.json`). */
  home: string;
  /** Bearer token allowed to scrape /metrics besides admin tokens. */
  metricsToken?: string;
  /** Seconds between usage records of a running sandbox. */
  usageCheckpointSeconds: number;
  /** Largest accepted request body in bytes. */
  bodyLimitBytes: number;
  /** Largest uploaded file in bytes (POST /api/v1/mags-files). */
  maxUploadBytes: number;
  filesMaxBytes: number;
  /** Blob store driver for uploads and workspace versions. */
  blobStore: 'file' | 's3';
  /** Root of the filesystem blob store. */
  blobDir: string;
  s3Bucket?: string;
  s3Endpoint?: string;
  s3Prefix?: string;
  s3Region?: string;
  s3ForcePathStyle: boolean;
  /** Seconds between syncs of a workspace while its job runs (0 = only when the job ends). */
  syncIntervalSeconds: number;
  /** Stored versions kept per workspace. */
  workspaceHistory: number;
  /** Port of the SSH gateway; absent = no gateway (SSH access answers 501). */
  sshPort?: number;
  /** Host named in SSH access answers; absent = the host the client used for the API. */
  sshHost?: string;
  /** An SSH connection that moves no bytes for this long is closed (0 = never). */
  sshIdleTimeoutSeconds: number;
  /** SSH connections one user may hold open at once. */
  sshMaxConnectionsPerUser: number;
  /** Address the public-URL proxy listens on. */
  proxyHost: string;
  /** Port of the public-URL proxy (0 = a free port). */
  proxyPort: number;
  /** Public URLs are `<sub>.apps.<domain>`. */
  domain: string;
  /** Scheme of the URLs the server hands out. */
  proxyPublicScheme: 'http' | 'https';
  /** Port in the URLs the server hands out; absent = the proxy's own port. */
  proxyPublicPort?: number;
  /** How long a request waits for a woken job's app to accept connections. */
  proxyWakeTimeoutSeconds: number;
  /** PEM certificate and key: the proxy serves HTTPS itself. */
  proxyTlsCert?: string;
  proxyTlsKey?: string;
  /** Idle seconds before a persistent job's sandbox is frozen (0 = never). */
  freezeAfterSeconds: number;
  /** Idle seconds before a persistent job's sandbox is synced and stopped (0 = never). */
  sleepAfterSeconds: number;
  /** CPU use in percent of one core above which a persistent sandbox counts as busy. */
  idleCpuPercent: number;
  /** Network bytes per second (sent plus received) above which a persistent sandbox counts as busy (0 = never). */
  idleNetBytesPerSecond: number;
  /** Seconds a wake may take before the waiting call gets SANDBOX_START_TIMEOUT. */
  wakeTimeoutSeconds: number;
  /** Webhooks may reach loopback and private addresses ('1'/'true'). */
  webhookAllowPrivate: boolean;
  /** Base URL clients reach the API at, for links in webhook payloads; absent = http://<host>:<port>. */
  apiPublicUrl?: string;
  /** Settings that were given but do nothing in this version, one message each; the server logs them at start. */
  warnings: string[];
}

export type LogLevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
const LOG_LEVELS: readonly LogLevelName[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const BLOB_STORES = ['file', 's3'] as const;
const CPUSET_MODES = ['pin', 'off'] as const;
const BOOLEANS = ['true', 'false'] as const;
const FLAGS = ['1', '0', 'true', 'false'] as const;

/** A configuration value that cannot be used; the message names the variable and what to do. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Key = Exclude<keyof ServerConfig, 'home' | 'warnings'>;

/** One configuration setting: its env var, flag, default (in words for docs), unit and meaning. */
export interface ConfigSetting {
  key: Key;
  env: string;
  flag: string;
  defaultText: string;
  unit: string;
  meaning: string;
  kind: 'string' | 'port' | 'int' | 'ratio' | 'seconds' | 'path' | 'url' | 'enum';
  min?: number;
  values?: readonly string[];
}

/** Every setting, in the order docs/configuration.md lists them. */
export const CONFIG_SETTINGS: readonly ConfigSetting[] = [
  { key: 'dataDir', env: 'MAGS_DATA_DIR', flag: '--data-dir', kind: 'path', defaultText: '`/var/lib/mags` as root, else `~/.mags/server`', unit: 'path', meaning: 'All state: database, admin token, images, sandbox layers.' },
  { key: 'host', env: 'MAGS_HOST', flag: '--host', kind: 'string', defaultText: '`127.0.0.1`', unit: 'address', meaning: 'Address the API listens on (`0.0.0.0` for all interfaces).' },
  { key: 'port', env: 'MAGS_PORT', flag: '--port', kind: 'port', defaultText: '`8090`', unit: 'TCP port', meaning: 'REST API port; `0` picks a free port (the ready line shows it).' },
  { key: 'databaseUrl', env: 'MAGS_DATABASE_URL', flag: '--database-url', kind: 'url', defaultText: 'SQLite file `mags.db` in the data dir', unit: 'URL', meaning: '`postgres://user:pass@host:port/db` to keep metadata in PostgreSQL.' },
  { key: 'imageDir', env: 'MAGS_IMAGE_DIR', flag: '--image-dir', kind: 'path', defaultText: '`$MAGS_DATA_DIR/images`', unit: 'path', meaning: 'Where built sandbox base images are cached (several servers may share it).' },
  { key: 'poolMinSize', env: 'MAGS_POOL_MIN_SIZE', flag: '--pool-min-size', kind: 'int', min: 0, defaultText: '`3`', unit: 'sandboxes', meaning: 'Warm sandboxes kept ready for jobs without a workspace.' },
  { key: 'poolMaxSize', env: 'MAGS_POOL_MAX_SIZE', flag: '--pool-max-size', kind: 'int', min: 0, defaultText: '`max(10, MAGS_POOL_MIN_SIZE)`', unit: 'sandboxes', meaning: 'Most sandboxes the pool holds (idle + busy) before jobs get cold sandboxes.' },
  { key: 'jobTimeoutSeconds', env: 'MAGS_JOB_TIMEOUT_SECONDS', flag: '--job-timeout', kind: 'int', min: 1, defaultText: '`3600`', unit: 'seconds', meaning: 'Wall-clock limit of a job that sets no `timeout_seconds` of its own.' },
  { key: 'maxOutputBytes', env: 'MAGS_MAX_OUTPUT_BYTES', flag: '--max-output-bytes', kind: 'int', min: 1024, defaultText: '`10485760` (10 MiB)', unit: 'bytes', meaning: 'Output stored per job, each line counting its bytes + 64; beyond it one truncation line is logged and the rest discarded.' },
  { key: 'logRetentionDays', env: 'MAGS_LOG_RETENTION_DAYS', flag: '--log-retention-days', kind: 'int', min: 0, defaultText: '`0` (keep forever)', unit: 'days', meaning: 'Output lines of jobs that ended (`completed`, `error`) more than this many days ago are deleted, at start and then hourly; the job stays and its logs answer `{"logs":[]}`.' },
  { key: 'cronRetentionDays', env: 'MAGS_CRON_RETENTION_DAYS', flag: '--cron-retention-days', kind: 'int', min: 0, defaultText: '`30`', unit: 'days', meaning: 'Firings of schedules (`GET /api/v1/mags-cron/{id}/runs`) recorded more than this many days ago are deleted, at start and then hourly; each schedule keeps its newest 50, the firing that submitted its newest job, and firings waiting for the previous job. `0`: keep forever.' },
  { key: 'webhookRetentionDays', env: 'MAGS_WEBHOOK_RETENTION_DAYS', flag: '--webhook-retention-days', kind: 'int', min: 0, defaultText: '`30`', unit: 'days', meaning: 'Delivered and failed webhook deliveries created more than this many days ago are deleted, at start and then hourly; each endpoint keeps its newest 50, and a delivery still being tried is never deleted. `0`: keep forever.' },
  { key: 'maxConcurrentJobs', env: 'MAGS_MAX_CONCURRENT_JOBS', flag: '--max-concurrent-jobs', kind: 'int', min: 1, defaultText: '`32`', unit: 'jobs', meaning: 'Jobs running at once; more wait as `pending`.' },
  { key: 'maxPendingJobsPerUser', env: 'MAGS_MAX_PENDING_JOBS_PER_USER', flag: '--max-pending-jobs-per-user', kind: 'int', min: 1, defaultText: '`1000`', unit: 'jobs', meaning: 'Queued (`pending`) jobs one user may have; more submissions get 429 `RATE_LIMITED`.' },
  { key: 'maxRunningJobsPerUser', env: 'MAGS_MAX_RUNNING_JOBS_PER_USER', flag: '--max-running-jobs-per-user', kind: 'int', min: 1, defaultText: '`max(1, MAGS_MAX_CONCURRENT_JOBS - 1)`', unit: 'jobs', meaning: 'Jobs of one user running at once; the queue takes users in turn, so another user\'s job gets the next free slot.' },
  { key: 'memoryOvercommit', env: 'MAGS_MEMORY_OVERCOMMIT', flag: '--memory-overcommit', kind: 'ratio', defaultText: '`1`', unit: 'ratio', meaning: 'Running jobs\' `memory_mb` may add up to this times the sandbox memory (host memory less the reserve, docs/security.md); more wait as `pending`.' },
  { key: 'cpuOvercommit', env: 'MAGS_CPU_OVERCOMMIT', flag: '--cpu-overcommit', kind: 'ratio', defaultText: '`16`', unit: 'ratio', meaning: 'Running jobs\' `vcpus` may add up to this times the host\'s CPUs; more wait as `pending`.' },
  { key: 'diskOvercommit', env: 'MAGS_DISK_OVERCOMMIT', flag: '--disk-overcommit', kind: 'ratio', defaultText: '`1`', unit: 'ratio', meaning: 'Running jobs\' `disk_gb` may add up to this times the free space of the data dir; more wait as `pending`.' },
  { key: 'sandboxCpuset', env: 'MAGS_SANDBOX_CPUSET', flag: '--sandbox-cpuset', kind: 'enum', values: CPUSET_MODES, defaultText: '`pin`', unit: '-', meaning: '`pin`: a sandbox runs on ceil(`vcpus`) of the host\'s CPUs, the least used, so `nproc`, Node and Python see what it was granted; `off`: it may run on every CPU (only the quota bounds it; `nproc` then shows the host\'s count, `/proc/cpuinfo` still the grant). Pinning costs latency on a busy host (docs/sandboxes.md).' },
  { key: 'logLevel', env: 'MAGS_LOG_LEVEL', flag: '--log-level', kind: 'enum', values: LOG_LEVELS, defaultText: '`info`', unit: '-', meaning: 'Server log level (JSON lines on stderr): `trace`, `debug`, `info`, `warn`, `error`, `fatal`, `silent`.' },
  { key: 'debianMirror', env: 'MAGS_DEBIAN_MIRROR', flag: '--debian-mirror', kind: 'url', defaultText: 'the image builder\'s default (`http://deb.debian.org/debian`)', unit: 'URL', meaning: 'Debian mirror used to build the sandbox base image.' },
  { key: 'runtime', env: 'MAGS_RUNTIME', flag: '--runtime', kind: 'enum', values: RUNTIME_NAMES, defaultText: `\`${DEFAULT_RUNTIME}\``, unit: '-', meaning: 'Sandbox runtime driver (`container`: crun with namespaces, cgroups and an overlay root).' },
  { key: 'metricsToken', env: 'MAGS_METRICS_TOKEN', flag: '--metrics-token', kind: 'string', defaultText: 'none (only admin API tokens)', unit: '-', meaning: 'A bearer token Prometheus may use to scrape `/metrics`, besides admin API tokens (docs/metrics.md).' },
  { key: 'usageCheckpointSeconds', env: 'MAGS_USAGE_CHECKPOINT_SECONDS', flag: '--usage-checkpoint', kind: 'int', min: 10, defaultText: '`300`', unit: 'seconds', meaning: 'How often the usage of a sandbox that is still running is recorded (a sandbox\'s use is also recorded when it is given back).' },
  { key: 'bodyLimitBytes', env: 'MAGS_BODY_LIMIT_BYTES', flag: '--body-limit', kind: 'int', min: 1024, defaultText: '`2097152` (2 MiB)', unit: 'bytes', meaning: 'Largest accepted request body; bigger ones get 413 `PAYLOAD_TOO_LARGE`.' },
  { key: 'filesMaxBytes', env: 'MAGS_FILES_MAX_BYTES', flag: '--files-max-bytes', kind: 'int', min: 1, defaultText: '`1073741824` (1 GiB)', unit: 'bytes', meaning: 'Most bytes one files API read or write moves (`GET`/`PUT .../files`, `mags cp`); larger ones get 413 `PAYLOAD_TOO_LARGE` (reads: use a `Range`).' },
  { key: 'maxUploadBytes', env: 'MAGS_MAX_UPLOAD_BYTES', flag: '--max-upload-bytes', kind: 'int', min: 1, defaultText: '`104857600` (100 MiB)', unit: 'bytes', meaning: 'Largest uploaded file (`POST /api/v1/mags-files`, `mags run -f`); bigger ones get 413 `PAYLOAD_TOO_LARGE`.' },
  { key: 'blobStore', env: 'MAGS_BLOB_STORE', flag: '--blob-store', kind: 'enum', values: BLOB_STORES, defaultText: '`file`', unit: '-', meaning: 'Where uploaded files and workspace versions are kept: `file` (a directory, one host) or `s3` (a bucket, needs `MAGS_S3_BUCKET`); see docs/self-hosting.md.' },
  { key: 'blobDir', env: 'MAGS_BLOB_DIR', flag: '--blob-dir', kind: 'path', defaultText: '`$MAGS_DATA_DIR/blobs`', unit: 'path', meaning: 'Root of the `file` blob store.' },
  { key: 's3Bucket', env: 'MAGS_S3_BUCKET', flag: '--s3-bucket', kind: 'string', defaultText: 'none (required with `MAGS_BLOB_STORE=s3`)', unit: 'bucket', meaning: 'Bucket of the `s3` blob store (must exist).' },
  { key: 's3Endpoint', env: 'MAGS_S3_ENDPOINT', flag: '--s3-endpoint', kind: 'url', defaultText: 'AWS', unit: 'URL', meaning: 'Endpoint of an S3-compatible service (MinIO, R2); unset for AWS S3.' },
  { key: 's3Prefix', env: 'MAGS_S3_PREFIX', flag: '--s3-prefix', kind: 'string', defaultText: 'none', unit: 'key prefix', meaning: 'Key prefix inside the bucket (e.g. `mags/`), so one bucket serves several installations.' },
  { key: 's3Region', env: 'MAGS_S3_REGION', flag: '--s3-region', kind: 'string', defaultText: '`AWS_REGION` / `~/.aws/config`', unit: 'region', meaning: 'Region of the bucket (`auto` for Cloudflare R2).' },
  { key: 'syncIntervalSeconds', env: 'MAGS_SYNC_INTERVAL_SECONDS', flag: '--sync-interval', kind: 'int', min: 0, defaultText: '`30`', unit: 'seconds', meaning: 'How often a running job\'s workspace is synced to the blob store (`0`: only when the job ends; a sync also runs after every job and on `mags sync`).' },
  { key: 'workspaceHistory', env: 'MAGS_WORKSPACE_HISTORY', flag: '--workspace-history', kind: 'int', min: 1, defaultText: '`20`', unit: 'versions', meaning: 'Stored versions kept per workspace; older ones are pruned after each sync.' },
  { key: 'proxyHost', env: 'MAGS_PROXY_HOST', flag: '--proxy-host', kind: 'string', defaultText: '`MAGS_HOST`', unit: 'address', meaning: 'Address the public-URL proxy listens on (docs/urls.md).' },
  { key: 'proxyPort', env: 'MAGS_PROXY_PORT', flag: '--proxy-port', kind: 'port', defaultText: '`8091`', unit: 'TCP port', meaning: 'Port of the public-URL proxy: `http://<sub>.apps.<MAGS_DOMAIN>:<port>/` reaches a job\'s app; `0` picks a free port.' },
  { key: 'domain', env: 'MAGS_DOMAIN', flag: '--domain', kind: 'string', defaultText: '`localhost`', unit: 'host name', meaning: 'Public URLs are `<sub>.apps.<MAGS_DOMAIN>`; the default `localhost` needs no DNS on the server\'s machine (`*.localhost` resolves to loopback). Elsewhere point wildcard DNS `*.apps.<domain>` at the proxy (docs/self-hosting.md).' },
  { key: 'proxyPublicScheme', env: 'MAGS_PROXY_PUBLIC_SCHEME', flag: '--proxy-public-scheme', kind: 'enum', values: ['http', 'https'], defaultText: '`https` with `MAGS_PROXY_TLS_CERT`, else `http`', unit: '-', meaning: 'Scheme of the URLs the server hands out (`https` behind a TLS-terminating Caddy or nginx).' },
  { key: 'proxyPublicPort', env: 'MAGS_PROXY_PUBLIC_PORT', flag: '--proxy-public-port', kind: 'port', defaultText: 'the proxy\'s own port', unit: 'TCP port', meaning: 'Port in the URLs the server hands out (`443` behind a reverse proxy on the standard port; 80 with http and 443 with https are left out of the URL).' },
  { key: 'proxyWakeTimeoutSeconds', env: 'MAGS_PROXY_WAKE_TIMEOUT_SECONDS', flag: '--proxy-wake-timeout', kind: 'int', min: 1, defaultText: '`30`', unit: 'seconds', meaning: 'How long a request to a sleeping or frozen job waits for the job to wake and its app to accept connections before a 504 `APP_WAKE_TIMEOUT` page.' },
  { key: 'proxyTlsCert', env: 'MAGS_PROXY_TLS_CERT', flag: '--proxy-tls-cert', kind: 'path', defaultText: 'none', unit: 'path', meaning: 'PEM certificate (chain) for `*.apps.<MAGS_DOMAIN>`: the proxy serves HTTPS itself. Needs `MAGS_PROXY_TLS_KEY`.' },
  { key: 'proxyTlsKey', env: 'MAGS_PROXY_TLS_KEY', flag: '--proxy-tls-key', kind: 'path', defaultText: 'none', unit: 'path', meaning: 'PEM private key of `MAGS_PROXY_TLS_CERT`.' },
  { key: 'freezeAfterSeconds', env: 'MAGS_FREEZE_AFTER_SECONDS', flag: '--freeze-after', kind: 'seconds', defaultText: '`60`', unit: 'seconds', meaning: 'Idle time after which a persistent job\'s sandbox is frozen (cgroup freezer, memory kept, thawed in milliseconds by the next use); `0`: never. Fractions allowed. See docs/sandboxes.md, "Persistent sandboxes".' },
  { key: 'sleepAfterSeconds', env: 'MAGS_SLEEP_AFTER_SECONDS', flag: '--sleep-after', kind: 'seconds', defaultText: '`600`', unit: 'seconds', meaning: 'Idle time after which a persistent job with a workspace is put to sleep: workspace synced, sandbox stopped, status `sleeping`; the next use starts a new sandbox and runs `startup_command`. `0`: never. Fractions allowed.' },
  { key: 'idleCpuPercent', env: 'MAGS_IDLE_CPU_PERCENT', flag: '--idle-cpu-percent', kind: 'seconds', defaultText: '`5`', unit: 'percent of one core', meaning: 'A persistent sandbox whose processes use more CPU than this (averaged between two checks) counts as busy and is neither frozen nor put to sleep.' },
  { key: 'idleNetBytesPerSecond', env: 'MAGS_IDLE_NET_BYTES_PER_SECOND', flag: '--idle-net-bytes-per-second', kind: 'int', min: 0, defaultText: '`1024`', unit: 'bytes per second', meaning: 'A persistent sandbox whose network interface moves more than this (sent plus received, averaged between two checks) counts as busy and is neither frozen nor put to sleep, so a slow download or a long-lived connection that bypasses the proxy keeps it awake; `0`: traffic never counts. An idle sandbox moves 0 bytes; ARP and TCP keep-alives stay far below the default (docs/sandboxes.md).' },
  { key: 'wakeTimeoutSeconds', env: 'MAGS_WAKE_TIMEOUT_SECONDS', flag: '--wake-timeout', kind: 'seconds', defaultText: '`60`', unit: 'seconds', meaning: 'Longest a call waits for a sleeping persistent job to wake before it gets 504 `SANDBOX_START_TIMEOUT` (the wake goes on).' },
  { key: 'webhookAllowPrivate', env: 'MAGS_WEBHOOK_ALLOW_PRIVATE', flag: '--webhook-allow-private', kind: 'enum', values: FLAGS, defaultText: '`0`', unit: '-', meaning: '`1` lets webhooks reach loopback, private, link-local and CGNAT addresses and the server itself (receivers on your own network); by default such targets are refused (docs/webhooks.md).' },
  { key: 'apiPublicUrl', env: 'MAGS_API_PUBLIC_URL', flag: '--api-public-url', kind: 'url', defaultText: '`http://<MAGS_HOST>:<port>`', unit: 'URL', meaning: 'Base URL clients reach the API at; webhook payloads link to the job\'s logs under it.' },
  { key: 's3ForcePathStyle', env: 'MAGS_S3_FORCE_PATH_STYLE', flag: '--s3-force-path-style', kind: 'enum', values: BOOLEANS, defaultText: '`false`', unit: '-', meaning: '`true` addresses buckets as `endpoint/bucket` (MinIO and most self-hosted services).' },
  { key: 'sshPort', env: 'MAGS_SSH_PORT', flag: '--ssh-port', kind: 'port', defaultText: 'unset (no SSH gateway)', unit: 'TCP port', meaning: 'Port of the SSH gateway (docs/ssh.md), on `MAGS_HOST`; `0` picks a free port (the log shows it). Unset: `access {"port": 22}` answers 501.' },
  { key: 'sshHost', env: 'MAGS_SSH_HOST', flag: '--ssh-host', kind: 'string', defaultText: 'the host the client used for the API', unit: 'host name', meaning: '`ssh_host` in SSH access answers (the gateway\'s public name).' },
  { key: 'sshIdleTimeoutSeconds', env: 'MAGS_SSH_IDLE_TIMEOUT_SECONDS', flag: '--ssh-idle-timeout', kind: 'int', min: 0, defaultText: '`3600`', unit: 'seconds', meaning: 'An SSH connection that moves no bytes for this long is closed (`0`: never); an open connection keeps its sandbox awake.' },
  { key: 'sshMaxConnectionsPerUser', env: 'MAGS_SSH_MAX_CONNECTIONS_PER_USER', flag: '--ssh-max-connections-per-user', kind: 'int', min: 1, defaultText: '`64`', unit: 'connections', meaning: 'SSH connections one user may hold open at once; more are refused at login.' },
  { key: 'webDir', env: 'MAGS_WEB_DIR', flag: '--web-dir', kind: 'path', defaultText: '`packages/web/dist` of this installation', unit: 'path', meaning: 'The built dashboard and docs site served at `/` (`npm run build` makes it); without it `/` answers how to build it.' },
  { key: 'trustProxy', env: 'MAGS_TRUST_FORWARDED', flag: '--trust-forwarded', kind: 'enum', values: BOOLEANS, defaultText: '`false`', unit: '-', meaning: '`true` when a TLS-terminating reverse proxy is in front: `X-Forwarded-Proto`/`-For`/`-Host` are believed, so session cookies get `Secure` and sign-in limits count the real client address.' },
  { key: 'sessionTtlHours', env: 'MAGS_SESSION_TTL_HOURS', flag: '--session-ttl-hours', kind: 'int', min: 1, defaultText: '`168` (7 days)', unit: 'hours', meaning: 'How long a dashboard sign-in lasts before the user must sign in again.' },
];

/**
 * Settings of features this version does not have yet (the SSH gateway).
 * They are not settings: an env var is logged as a warning at start, a flag is refused.
 */
export const UNAVAILABLE_SETTINGS: readonly { env: string; flag: string; feature: string }[] = [
];

export type ConfigOverrides = Partial<Omit<ServerConfig, 'warnings'>>;

/**
 * Builds the configuration from `env` (the process environment in production) and `overrides`
 * (flags or a caller's object). Throws `ConfigError` naming the first invalid variable.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: ConfigOverrides = {}): ServerConfig {
  const home = overrides.home ?? (env.HOME && env.HOME !== '' ? env.HOME : homedir());
  const raw = new Map<Key, unknown>();
  for (const s of CONFIG_SETTINGS) {
    const o = overrides[s.key];
    if (o !== undefined) {
      raw.set(s.key, parseValue(s, String(o), `${s.flag} (or ${s.env})`));
      continue;
    }
    const e = env[s.env];
    if (e !== undefined && e.trim() !== '') raw.set(s.key, parseValue(s, e.trim(), s.env));
  }
  const warnings: string[] = [];
  for (const u of UNAVAILABLE_SETTINGS) {
    if (env[u.env] !== undefined && env[u.env]!.trim() !== '') {
      warnings.push(`${u.env} is set but ignored: this version of the server has no ${u.feature} yet; unset ${u.env}.`);
    }
  }
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const dataDir = resolve((raw.get('dataDir') as string | undefined) ?? (isRoot ? '/var/lib/mags' : join(home, '.mags', 'server')));
  const poolMinSize = (raw.get('poolMinSize') as number | undefined) ?? 3;
  const poolMaxSize = (raw.get('poolMaxSize') as number | undefined) ?? Math.max(10, poolMinSize);
  if (poolMaxSize < poolMinSize) {
    throw new ConfigError(`MAGS_POOL_MAX_SIZE (${poolMaxSize}) is smaller than MAGS_POOL_MIN_SIZE (${poolMinSize}); raise the maximum or lower the minimum.`);
  }
  const maxConcurrentJobs = (raw.get('maxConcurrentJobs') as number | undefined) ?? 32;
  const blobStore = (raw.get('blobStore') as 'file' | 's3' | undefined) ?? 'file';
  const s3Bucket = raw.get('s3Bucket') as string | undefined;
  if (blobStore === 's3' && !s3Bucket) {
    throw new ConfigError('MAGS_BLOB_STORE=s3 needs a bucket: set MAGS_S3_BUCKET (and MAGS_S3_ENDPOINT for a service other than AWS), or unset MAGS_BLOB_STORE to keep blobs in the data dir.');
  }
  const domain = ((raw.get('domain') as string | undefined) ?? 'localhost').toLowerCase().replace(/\.$/, '');
  if (!/^(?=.{1,240}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/.test(domain)) {
    throw new ConfigError(`MAGS_DOMAIN="${domain}" is not a host name; use e.g. example.com (URLs become <sub>.apps.example.com) or unset it for localhost.`);
  }
  const proxyTlsCert = raw.get('proxyTlsCert') as string | undefined;
  const proxyTlsKey = raw.get('proxyTlsKey') as string | undefined;
  if ((proxyTlsCert === undefined) !== (proxyTlsKey === undefined)) {
    throw new ConfigError('MAGS_PROXY_TLS_CERT and MAGS_PROXY_TLS_KEY go together: set both (PEM files) for an HTTPS proxy, or neither.');
  }
  const host = (raw.get('host') as string | undefined) ?? '127.0.0.1';
  return {
    dataDir,
    host,
    port: (raw.get('port') as number | undefined) ?? 8090,
    databaseUrl: raw.get('databaseUrl') as string | undefined,
    imageDir: resolve((raw.get('imageDir') as string | undefined) ?? join(dataDir, 'images')),
    poolMinSize,
    poolMaxSize,
    jobTimeoutSeconds: (raw.get('jobTimeoutSeconds') as number | undefined) ?? 3600,
    maxOutputBytes: (raw.get('maxOutputBytes') as number | undefined) ?? 10 * 1024 * 1024,
    logRetentionDays: (raw.get('logRetentionDays') as number | undefined) ?? 0,
    cronRetentionDays: (raw.get('cronRetentionDays') as number | undefined) ?? 30,
    webhookRetentionDays: (raw.get('webhookRetentionDays') as number | undefined) ?? 30,
    maxConcurrentJobs,
    maxPendingJobsPerUser: (raw.get('maxPendingJobsPerUser') as number | undefined) ?? 1000,
    maxRunningJobsPerUser: (raw.get('maxRunningJobsPerUser') as number | undefined) ?? Math.max(1, maxConcurrentJobs - 1),
    memoryOvercommit: (raw.get('memoryOvercommit') as number | undefined) ?? 1,
    cpuOvercommit: (raw.get('cpuOvercommit') as number | undefined) ?? 16,
    diskOvercommit: (raw.get('diskOvercommit') as number | undefined) ?? 1,
    sandboxCpuset: (raw.get('sandboxCpuset') as 'pin' | 'off' | undefined) ?? 'pin',
    logLevel: (raw.get('logLevel') as LogLevelName | undefined) ?? 'info',
    debianMirror: raw.get('debianMirror') as string | undefined,
    runtime: (raw.get('runtime') as RuntimeName | undefined) ?? DEFAULT_RUNTIME,
    home,
    metricsToken: raw.get('metricsToken') as string | undefined,
    usageCheckpointSeconds: (raw.get('usageCheckpointSeconds') as number | undefined) ?? 300,
    bodyLimitBytes: (raw.get('bodyLimitBytes') as number | undefined) ?? 2 * 1024 * 1024,
    maxUploadBytes: (raw.get('maxUploadBytes') as number | undefined) ?? 100 * 1024 * 1024,
    filesMaxBytes: (raw.get('filesMaxBytes') as number | undefined) ?? 1024 * 1024 * 1024,
    blobStore,
    blobDir: resolve((raw.get('blobDir') as string | undefined) ?? join(dataDir, 'blobs')),
    s3Bucket,
    s3Endpoint: raw.get('s3Endpoint') as string | undefined,
    s3Prefix: raw.get('s3Prefix') as string | undefined,
    s3Region: raw.get('s3Region') as string | undefined,
    s3ForcePathStyle: raw.get('s3ForcePathStyle') === 'true',
    syncIntervalSeconds: (raw.get('syncIntervalSeconds') as number | undefined) ?? 30,
    sshPort: raw.get('sshPort') as number | undefined,
    sshHost: raw.get('sshHost') as string | undefined,
    sshIdleTimeoutSeconds: (raw.get('sshIdleTimeoutSeconds') as number | undefined) ?? 3600,
    sshMaxConnectionsPerUser: (raw.get('sshMaxConnectionsPerUser') as number | undefined) ?? 64,
    workspaceHistory: (raw.get('workspaceHistory') as number | undefined) ?? 20,
    proxyHost: (raw.get('proxyHost') as string | undefined) ?? host,
    proxyPort: (raw.get('proxyPort') as number | undefined) ?? 8091,
    domain,
    proxyPublicScheme: (raw.get('proxyPublicScheme') as 'http' | 'https' | undefined) ?? (proxyTlsCert ? 'https' : 'http'),
    proxyPublicPort: raw.get('proxyPublicPort') as number | undefined,
    proxyWakeTimeoutSeconds: (raw.get('proxyWakeTimeoutSeconds') as number | undefined) ?? 30,
    proxyTlsCert: proxyTlsCert && resolve(proxyTlsCert),
    proxyTlsKey: proxyTlsKey && resolve(proxyTlsKey),
    freezeAfterSeconds: (raw.get('freezeAfterSeconds') as number | undefined) ?? 60,
    sleepAfterSeconds: (raw.get('sleepAfterSeconds') as number | undefined) ?? 600,
    idleCpuPercent: (raw.get('idleCpuPercent') as number | undefined) ?? 5,
    idleNetBytesPerSecond: (raw.get('idleNetBytesPerSecond') as number | undefined) ?? 1024,
    wakeTimeoutSeconds: (raw.get('wakeTimeoutSeconds') as number | undefined) ?? 60,
    webhookAllowPrivate: raw.get('webhookAllowPrivate') === '1' || raw.get('webhookAllowPrivate') === 'true',
    apiPublicUrl: raw.get('apiPublicUrl') as string | undefined,
    webDir: raw.get('webDir') as string | undefined,
    trustProxy: raw.get('trustProxy') === 'true',
    sessionTtlHours: (raw.get('sessionTtlHours') as number | undefined) ?? 168,
    warnings,
  };
}

function parseValue(s: ConfigSetting, value: string, name: string): unknown {
  switch (s.kind) {
    case 'string':
    case 'path':
      if (value === '') throw new ConfigError(`${name} is empty; set it to a ${s.unit} or unset it for the default.`);
      return value;
    case 'port': {
      const n = toInt(value);
      if (n === undefined || n < 0 || n > 65535) {
        throw new ConfigError(`${name}="${value}" is not a TCP port; use a whole number from 0 to 65535 (0 picks a free port).`);
      }
      return n;
    }
    case 'int': {
      const n = toInt(value);
      if (n === undefined || n < (s.min ?? 0)) {
        throw new ConfigError(`${name}="${value}" is not valid; use a whole number of ${s.unit} >= ${s.min ?? 0}.`);
      }
      return n;
    }
    case 'ratio': {
      const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
      if (!(n > 0)) throw new ConfigError(`${name}="${value}" is not valid; use a number > 0 (e.g. 1 or 1.5).`);
      return n;
    }
    case 'seconds': {
      const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
      if (!(n >= 0) || !Number.isFinite(n)) throw new ConfigError(`${name}="${value}" is not valid; use a number of ${s.unit} >= 0 (fractions allowed, e.g. 0.5).`);
      return n;
    }
    case 'enum':
      if (!s.values!.includes(value)) {
        if (s.key === 'runtime') throw new ConfigError(`${name}="${value}" is not a known runtime driver; the known ones are: ${s.values!.join(', ')}.`);
        throw new ConfigError(`${name}="${value}" is not valid; use one of: ${s.values!.join(', ')}.`);
      }
      return value;
    case 'url':
      if (s.key === 'databaseUrl') {
        if (!/^postgres(ql)?:\/\//.test(value)) {
          throw new ConfigError(`${name}="${redact(value)}" is not supported; use postgres://user:password@host:port/database, or unset it to use SQLite in the data dir.`);
        }
        return value;
      }
      try {
        new URL(value);
      } catch {
        throw new ConfigError(`${name}="${value}" is not a URL; use e.g. ${s.key === 's3Endpoint' ? 'http://minio.internal:9000' : 'http://deb.debian.org/debian'}.`);
      }
      return value;
  }
}

function toInt(value: string): number | undefined {
  if (!/^\d+$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Hides the password of a database URL in messages and logs. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

/**
 * Parses `mags server` flags (`--port 8090`, `--port=8090`) into overrides, using the flag names
 * of CONFIG_SETTINGS. Unknown flags are a ConfigError.
 */
export function parseServerFlags(argv: readonly string[]): ConfigOverrides {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const unavailable = UNAVAILABLE_SETTINGS.find((x) => x.flag === flag);
    if (unavailable) throw new ConfigError(`option ${flag} is not available: this version of the server has no ${unavailable.feature} yet; remove the option.`);
    const s = CONFIG_SETTINGS.find((x) => x.flag === flag);
    if (!s) throw new ConfigError(`unknown option ${flag}; the options are: ${CONFIG_SETTINGS.map((x) => x.flag).join(', ')}.`);
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`option ${flag} needs a value.`);
    out[s.key] = value;
  }
  return out as ConfigOverrides;
}
