import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import SQLite from 'better-sqlite3';
import { mountsUnder } from '../src/host/mounts.js';
import { imageVersion } from '../src/runtime/image.js';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { client, type Client } from './helpers/http.js';
import { startMoto } from './helpers/moto.js';
import { spawnServer, type SpawnedServer } from './helpers/spawn-server.js';

/** A job's stdout lines. */
async function stdout(c: Client, id: string): Promise<string[]> {
  const logs = await c.req('GET', `/api/v1/mags-jobs/${id}/logs`);
  return logs.body.logs.filter((l: any) => l.stream === 'stdout').map((l: any) => l.message);
}

/**
 * Runs `fn` on a fresh data dir, starting servers with `start` (each replaces the last one). At
 * the end the last server is stopped and nothing may stay mounted; the dir is removed even when
 * `fn` fails.
 */
async function onFreshDataDir(prefix: string, fn: (dataDir: string, start: (env?: Record<string, string>) => Promise<SpawnedServer>) => Promise<void>): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), prefix));
  let server: SpawnedServer | undefined;
  try {
    await fn(dataDir, async (env) => (server = await spawnServer({ dataDir, env })));
    await server?.stop();
    server = undefined;
    assert.deepEqual(await mountsUnder(dataDir), []);
  } finally {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * Workspaces end to end: a real `mags server`, real sandboxes, real ext4 workspace layers. Needs
 * root and the host packages (test.sh installs them).
 */
describe('workspaces end to end (real server, real sandboxes)', () => {
  let server: SpawnedServer;
  let admin: Client;
  let bob: Client;
  before(async () => {
    server = await spawnServer({ env: { MAGS_JOB_TIMEOUT_SECONDS: '120' } });
    admin = client(server.url, server.token);
    const u = await admin.req('POST', '/api/v1/users', { name: 'bob' });
    assert.equal(u.status, 201, JSON.stringify(u.body));
    bob = client(server.url, u.body.token);
  });
  after(async () => {
    await server?.stop();
  });

  const run = async (c: Client, body: Record<string, unknown>) => {
    const id = await c.submit({ type: 'inline', ...body });
    const st = await c.waitDone(id, 120_000);
    return { id, st, out: await stdout(c, id) };
  };

  it('a second job of a workspace sees /root, /usr/local/bin and /etc as the first left them; ephemeral jobs keep nothing', async () => {
    const first = await run(admin, {
      workspace_id: 'proj',
      script: [
        'echo hello > /root/note.txt',
        'printf "#!/bin/sh\\necho tool-ran\\n" > /usr/local/bin/mytool && chmod +x /usr/local/bin/mytool',
        'echo "export FROM_ETC=yes" > /etc/profile.d/mine.sh',
        'rm /etc/issue',
      ].join(' && '),
    });
    assert.equal(first.st.status, 'completed', JSON.stringify(first.st));

    const second = await run(admin, { workspace_id: 'proj', script: 'cat /root/note.txt; mytool; cat /etc/profile.d/mine.sh; test -e /etc/issue && echo issue-back || echo issue-gone' });
    assert.equal(second.st.status, 'completed', JSON.stringify(second.st));
    assert.deepEqual(second.out, ['hello', 'tool-ran', 'export FROM_ETC=yes', 'issue-gone']);

    const eph = await run(admin, { script: 'echo x > /root/eph.txt; touch /usr/local/bin/eph' });
    assert.equal(eph.st.status, 'completed');
    const eph2 = await run(admin, { script: 'ls /root/note.txt /root/eph.txt /usr/local/bin/eph 2>&1 | wc -l; test -e /root/eph.txt && echo kept || echo gone' });
    assert.equal(eph2.out.at(-1), 'gone');
    const other = await run(admin, { script: 'test -e /root/note.txt && echo seen || echo clean' });
    assert.deepEqual(other.out, ['clean'], 'a job without the workspace does not see it');

    // Nothing stays mounted between jobs: the layer is unmounted once the job's workspace sync (which
    // runs after the status is stored) has finished.
    let left = await mountsUnder(`${server.dataDir}/workspaces`);
    for (const deadline = Date.now() + 20_000; left.length > 0 && Date.now() < deadline; left = await mountsUnder(`${server.dataDir}/workspaces`)) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(left, []);
  });

  it('another user with the same workspace name gets an empty workspace of their own', async () => {
    const b = await run(bob, { workspace_id: 'proj', script: 'test -e /root/note.txt && echo leaked || echo empty; echo bob > /root/bob.txt' });
    assert.deepEqual(b.out, ['empty']);
    const a = await run(admin, { workspace_id: 'proj', script: 'test -e /root/bob.txt && echo leaked || echo own; cat /root/note.txt' });
    assert.deepEqual(a.out, ['own', 'hello']);
    const list = await bob.req('GET', '/api/v1/workspaces');
    assert.deepEqual(list.body.workspaces.map((w: any) => w.workspace_id), ['proj']);
  });

  it('a busy workspace answers 409 WORKSPACE_BUSY ("already in use") and cannot be deleted', async () => {
    const id = await admin.submit({ type: 'inline', workspace_id: 'busy', script: 'sleep 3' });
    const second = await admin.req('POST', '/api/v1/mags-jobs', { type: 'inline', workspace_id: 'busy', script: 'true' });
    assert.equal(second.status, 409);
    assert.equal(second.body.code, 'WORKSPACE_BUSY');
    assert.match(second.body.error, /already in use/);
    const del = await admin.req('DELETE', '/api/v1/workspaces/busy');
    assert.equal(del.status, 409);
    assert.equal((await admin.waitDone(id)).status, 'completed');
    const ok = await admin.req('DELETE', '/api/v1/workspaces/busy');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  it('disk_gb caps the workspace layer: the job gets ENOSPC, the workspace stays usable', async () => {
    const full = await run(admin, {
      workspace_id: 'small',
      disk_gb: 1,
      script: 'dd if=/dev/zero of=/root/big bs=4M count=400 2>&1 | grep -m1 -o "No space left on device"; rm -f /root/big; echo after > /root/after.txt; cat /root/after.txt',
    });
    assert.ok(full.out.some((l) => /No space left on device/.test(l)), full.out.join('\n'));
    assert.equal(full.out.at(-1), 'after');
    const [ws] = (await admin.req('GET', '/api/v1/workspaces')).body.workspaces.filter((w: any) => w.workspace_id === 'small');
    assert.equal(ws.disk_gb, 1);
    assert.ok(ws.size_bytes < 1.2 * 1024 ** 3, `layer size ${ws.size_bytes}`);
  });

  it('base_workspace_id alone runs on the base read-only (changes discarded); with workspace_id it forks', async () => {
    const alone = await run(admin, { base_workspace_id: 'proj', script: 'cat /root/note.txt; echo changed > /root/note.txt' });
    assert.deepEqual(alone.out, ['hello']);
    const fork = await run(admin, { workspace_id: 'proj-fork', base_workspace_id: 'proj', script: 'cat /root/note.txt; echo forked > /root/note.txt' });
    assert.deepEqual(fork.out, ['hello']);
    const base = await run(admin, { workspace_id: 'proj', script: 'cat /root/note.txt' });
    assert.deepEqual(base.out, ['hello'], 'the base is unchanged');
    const again = await run(admin, { workspace_id: 'proj-fork', script: 'cat /root/note.txt; mytool' });
    assert.deepEqual(again.out, ['forked', 'tool-ran'], 'the fork keeps its changes and the base files without the base');
    const unknown = await admin.req('POST', '/api/v1/mags-jobs', { type: 'inline', base_workspace_id: 'nope', script: 'true' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.code, 'WORKSPACE_NOT_FOUND');
  });

  it('lists, syncs to the blob store and deletes workspaces; a deleted workspace starts empty', async () => {
    const list = await admin.req('GET', '/api/v1/workspaces');
    const names = list.body.workspaces.map((w: any) => w.workspace_id).sort();
    assert.deepEqual(names, ['proj', 'proj-fork', 'small']);
    const proj = list.body.workspaces.find((w: any) => w.workspace_id === 'proj');
    assert.match(proj.image_version, /^[0-9a-f]{12}$/);
    assert.ok(proj.size_bytes > 0);
    // Every job of a workspace ends with a sync: the stored versions are listed.
    assert.ok(proj.versions >= 1, JSON.stringify(proj));
    const sync = await admin.req('POST', '/api/v1/mags-jobs/proj/sync', {});
    assert.equal(sync.status, 200, JSON.stringify(sync.body));
    assert.equal(sync.body.synced, true);
    const del = await admin.req('DELETE', '/api/v1/workspaces/proj-fork');
    assert.equal(del.status, 200);
    const fresh = await run(admin, { workspace_id: 'proj-fork', script: 'test -e /root/note.txt && echo old || echo empty' });
    assert.deepEqual(fresh.out, ['empty']);
    assert.doesNotMatch(server.stderr(), /workspaces are kept on this host only/);
  });
});

describe('a workspace runs on the image it was created on while the server has it', () => {
  it('older image present: mounted and used; gone: the current image with a log line', async () => {
    const real = process.env.MAGS_IMAGE_DIR ?? '/var/cache/mags/images';
    const images = await mkdtemp(join(tmpdir(), 'mags-test-images-'));
    const current = imageVersion();
    // The same erofs file under an "older" version name stands in for an image of an older recipe.
    await symlink(join(real, current), join(images, current));
    await symlink(join(real, current), join(images, 'aaaaaaaaaaaa'));
    const server = await spawnServer({ env: { MAGS_IMAGE_DIR: images } });
    try {
      const c = client(server.url, server.token);
      const setVersion = (v: string) => {
        const db = new SQLite(join(server.dataDir, 'mags.db'));
        try {
          db.prepare('update workspaces set image_version = ? where name = ?').run(v, 'old');
        } finally {
          db.close();
        }
      };
      const systemLines = async (id: string): Promise<string[]> =>
        (await c.req('GET', `/api/v1/mags-jobs/${id}/logs`)).body.logs.filter((l: any) => l.stream === 'system').map((l: any) => l.message);

      const first = await c.submit({ type: 'inline', workspace_id: 'old', script: 'echo v1 > /root/v.txt' });
      assert.equal((await c.waitDone(first)).status, 'completed');
      assert.deepEqual(await systemLines(first), []);

      setVersion('aaaaaaaaaaaa');
      const second = await c.submit({ type: 'inline', workspace_id: 'old', script: 'cat /root/v.txt' });
      assert.equal((await c.waitDone(second)).status, 'completed');
      assert.ok((await systemLines(second)).some((l) => l.includes('runs on image aaaaaaaaaaaa')), JSON.stringify(await systemLines(second)));
      assert.equal((await mountsUnder(join(server.dataDir, 'runtime', 'image', 'aaaaaaaaaaaa'))).length, 1, 'the older image is mounted');

      setVersion('bbbbbbbbbbbb');
      const third = await c.submit({ type: 'inline', workspace_id: 'old', script: 'cat /root/v.txt' });
      const st = await c.waitDone(third);
      assert.equal(st.status, 'completed');
      assert.ok((await systemLines(third)).some((l) => l.includes(`no longer has; running on image ${current}`)));
      const logs = await c.req('GET', `/api/v1/mags-jobs/${third}/logs`);
      assert.ok(logs.body.logs.some((l: any) => l.message === 'v1'));
    } finally {
      await server.stop();
      await rm(images, { recursive: true, force: true });
    }
    assert.deepEqual(await mountsUnder(images), []);
  });
});

describe('workspaces across server restarts', () => {
  it('a workspace survives a clean restart and a SIGKILL of the daemon mid-job; nothing stays mounted', async () => {
    await onFreshDataDir('mags-test-ws-restart-', async (_dataDir, start) => {
      let server = await start();
      let c = client(server.url, server.token);
      const first = await c.submit({ type: 'inline', workspace_id: 'keep', script: 'echo before-restart > /root/r.txt' });
      assert.equal((await c.waitDone(first)).status, 'completed');
      await server.stop();

      server = await start();
      c = client(server.url, server.token);
      const running = await c.submit({ type: 'inline', workspace_id: 'keep', script: 'echo during > /root/d.txt; sync; sleep 60' });
      for (let i = 0; i < 200 && (await c.req('GET', `/api/v1/mags-jobs/${running}/status`)).body.status !== 'running'; i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 500));
      server.child.kill('SIGKILL');
      await new Promise((r) => server.child.once('exit', r));
      await server.stop();

      server = await start();
      c = client(server.url, server.token);
      assert.equal((await c.req('GET', `/api/v1/mags-jobs/${running}/status`)).body.status, 'error', 'the killed job ended in error');
      const after = await c.submit({ type: 'inline', workspace_id: 'keep', script: 'cat /root/r.txt /root/d.txt' });
      const st = await c.waitDone(after);
      assert.equal(st.status, 'completed', JSON.stringify(st));
      assert.deepEqual(await stdout(c, after), ['before-restart', 'during']);
    });
  });
});

/**
 * The local layer is a cache of the blob store: with every workspace layer of the host deleted
 * (another host, a wiped disk), the next job runs on the workspace restored byte for byte.
 */
describe('a workspace survives losing its local copy', () => {
  const lose = async (env: Record<string, string>) => {
    await onFreshDataDir('mags-test-ws-lost-', async (dataDir, start) => {
      let server = await start(env);
      let c = client(server.url, server.token);
      const write = [
        'head -c 9000000 /dev/urandom > /root/big.bin',
        'mkdir -p /root/d/e && echo deep > /root/d/e/f.txt && ln -s d/e/f.txt /root/link',
        'chmod 0751 /root/d && rm /etc/issue',
        'sha256sum /root/big.bin | cut -c1-64',
      ].join(' && ');
      const first = await c.submit({ type: 'inline', workspace_id: 'roam', script: write });
      assert.equal((await c.waitDone(first, 120_000)).status, 'completed');
      const [hash] = await stdout(c, first);
      assert.match(hash, /^[0-9a-f]{64}$/);
      await server.stop();
      await rm(join(dataDir, 'workspaces'), { recursive: true, force: true });
      await rm(join(dataDir, 'sync-cache'), { recursive: true, force: true });

      server = await start(env);
      c = client(server.url, server.token);
      const read = 'sha256sum /root/big.bin | cut -c1-64; cat /root/link; stat -c %a /root/d; test -e /etc/issue && echo issue-back || echo issue-gone';
      const second = await c.submit({ type: 'inline', workspace_id: 'roam', script: read });
      const st = await c.waitDone(second, 120_000);
      assert.equal(st.status, 'completed', JSON.stringify(st));
      assert.deepEqual(await stdout(c, second), [hash, 'deep', '751', 'issue-gone']);
    });
  };

  it('on the file blob store', async () => {
    await lose({});
  });

  it('on S3 (moto)', async () => {
    const moto = await startMoto();
    const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
    const s3 = new S3Client({ endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'mags-ws' }));
      await lose({
        MAGS_BLOB_STORE: 's3',
        MAGS_S3_BUCKET: 'mags-ws',
        MAGS_S3_ENDPOINT: moto.endpoint,
        MAGS_S3_REGION: 'us-east-1',
        MAGS_S3_FORCE_PATH_STYLE: 'true',
        MAGS_S3_PREFIX: 'install-a/',
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      });
    } finally {
      s3.destroy();
      await moto.stop();
    }
  });
});
