import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONFIG_SETTINGS, ConfigError, loadConfig, parseServerFlags } from '../src/config.js';
import { RUNTIME_NAMES } from '../src/runtime/registry.js';

describe('config', () => {
  const base = { HOME: '/tmp/home-x', MAGS_DATA_DIR: '/tmp/mags-data-x' };

  it('defaults', () => {
    const c = loadConfig(base);
    assert.equal(c.port, 8090);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.imageDir, '/tmp/mags-data-x/images');
    assert.equal(c.poolMinSize, 3);
    assert.equal(c.jobTimeoutSeconds, 3600);
    assert.equal(c.maxOutputBytes, 10 * 1024 * 1024);
    assert.equal(c.runtime, 'container');
    assert.equal(c.home, '/tmp/home-x');
    assert.deepEqual(c.warnings, []);
  });

  it('env vars and overrides (override wins)', () => {
    const c = loadConfig(
      { ...base, MAGS_PORT: '0', MAGS_POOL_MIN_SIZE: '1', MAGS_DATABASE_URL: 'postgres://u:p@h/db', MAGS_LOG_LEVEL: 'debug' },
      { port: 9999 },
    );
    assert.equal(c.port, 9999);
    assert.equal(c.poolMinSize, 1);
    assert.equal(c.databaseUrl, 'postgres://u:p@h/db');
    assert.equal(c.logLevel, 'debug');
  });

  for (const [env, value, re] of [
    ['MAGS_PORT', '80a', /MAGS_PORT="80a" is not a TCP port/],
    ['MAGS_PORT', '70000', /MAGS_PORT="70000" is not a TCP port/],
    ['MAGS_POOL_MIN_SIZE', '-1', /MAGS_POOL_MIN_SIZE="-1" is not valid/],
    ['MAGS_JOB_TIMEOUT_SECONDS', '0', /MAGS_JOB_TIMEOUT_SECONDS="0" is not valid/],
    ['MAGS_LOG_LEVEL', 'loud', /MAGS_LOG_LEVEL="loud" is not valid; use one of/],
    ['MAGS_RUNTIME', 'qemu', /^MAGS_RUNTIME="qemu" is not a known runtime driver; the known ones are: container\.$/],
    ['MAGS_DATABASE_URL', 'mysql://x:secret@h/db', /MAGS_DATABASE_URL="mysql:\/\/x:\*\*\*@h\/db" is not supported/],
    ['MAGS_DEBIAN_MIRROR', 'not a url', /MAGS_DEBIAN_MIRROR="not a url" is not a URL/],
  ] as const) {
    it(`rejects ${env}=${value} naming the variable`, () => {
      assert.throws(() => loadConfig({ ...base, [env]: value }), (err: unknown) => err instanceof ConfigError && re.test(err.message));
    });
  }

  it('the SSH gateway and the proxy are settings (no warnings)', () => {
    assert.equal(loadConfig({ ...base, MAGS_SSH_PORT: '2222' }).sshPort, 2222);
    assert.equal(loadConfig(base).sshPort, undefined);
    assert.deepEqual(loadConfig({ ...base, MAGS_SSH_PORT: '2222', MAGS_PROXY_PORT: '0' }).warnings, []);
  });

  it('proxy settings: defaults, domain syntax, TLS cert and key together', () => {
    const d = loadConfig({ ...base }, {});
    assert.equal(d.proxyPort, 8091);
    assert.equal(d.domain, 'localhost');
    assert.equal(d.proxyPublicScheme, 'http');
    assert.equal(d.proxyHost, d.host);
    assert.equal(d.proxyWakeTimeoutSeconds, 30);
    const c = loadConfig({ ...base, MAGS_DOMAIN: 'Example.COM.', MAGS_PROXY_PORT: '0', MAGS_PROXY_TLS_CERT: '/c.pem', MAGS_PROXY_TLS_KEY: '/k.pem' }, {});
    assert.equal(c.domain, 'example.com');
    assert.equal(c.proxyPort, 0);
    assert.equal(c.proxyPublicScheme, 'https');
    assert.throws(() => loadConfig({ ...base, MAGS_DOMAIN: 'evil.com/x' }, {}), (e: Error) => e instanceof ConfigError && /MAGS_DOMAIN/.test(e.message));
    assert.throws(() => loadConfig({ ...base, MAGS_PROXY_TLS_CERT: '/c.pem' }, {}), (e: Error) => e instanceof ConfigError && /MAGS_PROXY_TLS_KEY/.test(e.message));
    assert.throws(() => loadConfig({ ...base, MAGS_PROXY_PUBLIC_SCHEME: 'ftp' }, {}), ConfigError);
  });

  it('blob store and upload settings: file by default in the data dir, s3 needs a bucket', () => {
    const d = loadConfig({ MAGS_DATA_DIR: '/tmp/mags-cfg' }, {});
    assert.equal(d.blobStore, 'file');
    assert.equal(d.blobDir, '/tmp/mags-cfg/blobs');
    assert.equal(d.maxUploadBytes, 100 * 1024 * 1024);
    assert.equal(d.s3ForcePathStyle, false);
    assert.throws(() => loadConfig({ MAGS_BLOB_STORE: 's3' }, {}), (e: Error) => e instanceof ConfigError && /MAGS_S3_BUCKET/.test(e.message));
    assert.throws(() => loadConfig({ MAGS_BLOB_STORE: 'ftp' }, {}), ConfigError);
    assert.throws(() => loadConfig({ MAGS_S3_FORCE_PATH_STYLE: 'yes' }, {}), ConfigError);
    assert.throws(() => loadConfig({ MAGS_S3_ENDPOINT: 'not a url' }, {}), ConfigError);
    const s3 = loadConfig(
      { MAGS_BLOB_STORE: 's3', MAGS_S3_BUCKET: 'b', MAGS_S3_ENDPOINT: 'http://127.0.0.1:9000', MAGS_S3_PREFIX: 'mags/', MAGS_S3_REGION: 'auto', MAGS_S3_FORCE_PATH_STYLE: 'true', MAGS_MAX_UPLOAD_BYTES: '1024' },
      {},
    );
    assert.deepEqual(
      [s3.blobStore, s3.s3Bucket, s3.s3Endpoint, s3.s3Prefix, s3.s3Region, s3.s3ForcePathStyle, s3.maxUploadBytes],
      ['s3', 'b', 'http://127.0.0.1:9000', 'mags/', 'auto', true, 1024],
    );
    assert.equal(loadConfig({ MAGS_BLOB_DIR: '/srv/blobs' }, {}).blobDir, '/srv/blobs');
  });

  it('MAGS_RUNTIME selects a registered driver', () => {
    assert.equal(loadConfig({ ...base, MAGS_RUNTIME: 'container' }, {}).runtime, 'container');
    assert.deepEqual(CONFIG_SETTINGS.find((s) => s.env === 'MAGS_RUNTIME')!.values, RUNTIME_NAMES);
  });

  it('rejects a pool max below the min', () => {
    assert.throws(() => loadConfig({ ...base, MAGS_POOL_MIN_SIZE: '5', MAGS_POOL_MAX_SIZE: '2' }), /MAGS_POOL_MAX_SIZE \(2\) is smaller than MAGS_POOL_MIN_SIZE \(5\)/);
  });

  it('parses server flags', () => {
    assert.deepEqual(parseServerFlags(['--port', '1234', '--host=0.0.0.0']), { port: '1234', host: '0.0.0.0' });
    assert.throws(() => parseServerFlags(['--nope']), /unknown option --nope/);
    assert.throws(() => parseServerFlags(['--port']), /option --port needs a value/);
    assert.throws(() => loadConfig(base, parseServerFlags(['--port', 'x'])), /--port \(or MAGS_PORT\)="x" is not a TCP port/);
  });
  it('admission and fairness settings: ratios and the per-user running cap', () => {
    const c = loadConfig(base);
    assert.equal(c.maxRunningJobsPerUser, 31, 'one slot below MAGS_MAX_CONCURRENT_JOBS');
    assert.deepEqual([c.memoryOvercommit, c.cpuOvercommit, c.diskOvercommit], [1, 16, 1]);
    const d = loadConfig({ ...base, MAGS_MAX_CONCURRENT_JOBS: '1', MAGS_CPU_OVERCOMMIT: '1.5', MAGS_MAX_RUNNING_JOBS_PER_USER: '' });
    assert.equal(d.maxRunningJobsPerUser, 1);
    assert.equal(d.cpuOvercommit, 1.5);
    assert.throws(() => loadConfig({ ...base, MAGS_MEMORY_OVERCOMMIT: '0' }), /MAGS_MEMORY_OVERCOMMIT="0" is not valid; use a number > 0/);
    assert.throws(() => loadConfig({ ...base, MAGS_DISK_OVERCOMMIT: '-1' }), ConfigError);
  });
  it('persistent sandbox settings: defaults, fractions of seconds, 0 turns a step off, garbage refused', () => {
    const c = loadConfig(base);
    assert.deepEqual([c.freezeAfterSeconds, c.sleepAfterSeconds, c.idleCpuPercent, c.wakeTimeoutSeconds], [60, 600, 5, 60]);
    const d = loadConfig({ ...base, MAGS_FREEZE_AFTER_SECONDS: '0.25', MAGS_SLEEP_AFTER_SECONDS: '0', MAGS_IDLE_CPU_PERCENT: '2.5' });
    assert.deepEqual([d.freezeAfterSeconds, d.sleepAfterSeconds, d.idleCpuPercent], [0.25, 0, 2.5]);
    assert.equal(loadConfig(base, parseServerFlags(['--sleep-after', '1.5'])).sleepAfterSeconds, 1.5);
    for (const bad of ['-1', 'soon', '1e3', '.5', '1.']) {
      assert.throws(() => loadConfig({ ...base, MAGS_SLEEP_AFTER_SECONDS: bad }), /MAGS_SLEEP_AFTER_SECONDS="[^"]*" is not valid; use a number of seconds >= 0/, bad);
    }
    assert.equal(c.idleNetBytesPerSecond, 1024);
    assert.equal(loadConfig({ ...base, MAGS_IDLE_NET_BYTES_PER_SECOND: '0' }).idleNetBytesPerSecond, 0);
    assert.equal(loadConfig(base, parseServerFlags(['--idle-net-bytes-per-second', '4096'])).idleNetBytesPerSecond, 4096);
    for (const bad of ['-1', '1.5', 'lots']) {
      assert.throws(() => loadConfig({ ...base, MAGS_IDLE_NET_BYTES_PER_SECOND: bad }), /MAGS_IDLE_NET_BYTES_PER_SECOND="[^"]*" is not valid/, bad);
    }
  });
});
