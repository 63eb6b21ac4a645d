import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { client } from './helpers/http.js';
import { startPostgres } from './helpers/postgres.js';
import { SERVER_MAIN, spawnServer } from './helpers/spawn-server.js';

const run = promisify(execFile);

/** The daemon as a process: PostgreSQL metadata, output floods, shutdown with followers, image command. */
describe('mags server process', () => {
  it('runs jobs with metadata in PostgreSQL (MAGS_DATABASE_URL)', async () => {
    const pg = await startPostgres();
    try {
      const server = await spawnServer({ env: { MAGS_DATABASE_URL: pg.url } });
      try {
        const c = client(server.url, server.token);
        const id = await c.submit({ script: 'echo from-postgres; echo oops >&2; exit 3', type: 'inline', name: 'pg-job' });
        const st = await c.waitDone(id);
        assert.equal(st.status, 'error');
        assert.equal(st.exit_code, 3);
        const logs = await c.req('GET', '/api/v1/mags-jobs/pg-job/logs');
        assert.deepEqual(
          logs.body.logs.filter((l: any) => l.stream !== 'system').map((l: any) => [l.message, l.level]),
          [['from-postgres', 'info'], ['oops', 'error']],
        );
        const list = await c.req('GET', '/api/v1/mags-jobs');
        assert.equal(list.body.total, 1);
      } finally {
        await server.stop();
      }
    } finally {
      await pg.stop();
    }
  });

  it('an output flood in a real sandbox is capped and the server stays responsive', async () => {
    const server = await spawnServer({ env: { MAGS_MAX_OUTPUT_BYTES: '100000' } });
    try {
      const c = client(server.url, server.token);
      const id = await c.submit({ script: 'seq 1 300000; echo done >&2', type: 'inline' });
      const health = await fetch(server.url + '/health');
      assert.equal(health.status, 200);
      const st = await c.waitDone(id, 60_000);
      assert.equal(st.status, 'completed');
      const logs = await c.req('GET', `/api/v1/mags-jobs/${id}/logs`);
      const lines = logs.body.logs as Array<{ message: string; stream: string }>;
      assert.ok(lines.length < 20_000, `${lines.length} lines`);
      assert.equal(lines.filter((l) => l.message.includes('output truncated')).length, 1);
      assert.equal(lines[0]!.message, '1');
    } finally {
      await server.stop();
    }
  });

  it('SIGTERM with a live follower and a running job: the stream closes, the job ends in error, exit 0', async () => {
    const server = await spawnServer();
    try {
      const c = client(server.url, server.token);
      const id = await c.submit({ script: 'echo hi; sleep 60', type: 'inline' });
      const following = c.follow(id, '', 30_000);
      const end = Date.now() + 20_000;
      while ((await c.req('GET', `/api/v1/mags-jobs/${id}/status`)).body.status !== 'running') {
        if (Date.now() > end) throw new Error('job never started');
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 200));
      const exited = new Promise<number | null>((r) => server.child.once('exit', (code) => r(code)));
      const t0 = Date.now();
      server.child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.ok(Date.now() - t0 < 15_000, `shutdown took ${Date.now() - t0} ms`);
      const events = await following.catch(() => []);
      assert.ok(!events.some((e) => e.event === 'end' && e.data.status === 'completed'));
    } finally {
      await server.stop();
    }
  });

  it('`main.js image build` with a built image returns at once', async () => {
    const t0 = Date.now();
    const { stderr } = await run(process.execPath, [SERVER_MAIN, 'image', 'build'], {
      env: { PATH: process.env.PATH, HOME: '/tmp', MAGS_DATA_DIR: '/tmp/mags-image-cmd-test', MAGS_IMAGE_DIR: process.env.MAGS_IMAGE_DIR ?? '/var/cache/mags/images' },
    });
    assert.match(stderr, /sandbox image is ready/);
    assert.ok(Date.now() - t0 < 10_000);
  });
});

describe('start-up errors', () => {
  it('a port in use stops the server with a message naming MAGS_PORT, and nothing is left running', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      await assert.rejects(spawnServer({ env: { MAGS_PORT: String(port) } }), (err: Error) => {
        assert.match(err.message, new RegExp(`port ${port} on 127.0.0.1 is already in use; stop the other server or set MAGS_PORT`));
        assert.match(err.message, /exited \(code 2/);
        return true;
      });
    } finally {
      blocker.close();
    }
  });

  it('an invalid setting names the variable and exits 2', async () => {
    await assert.rejects(spawnServer({ env: { MAGS_POOL_MIN_SIZE: 'many' } }), /MAGS_POOL_MIN_SIZE="many" is not valid/);
  });
});
