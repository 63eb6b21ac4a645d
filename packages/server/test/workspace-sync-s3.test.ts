/**
 * Workspace sync on the S3 blob store driver against moto: a round trip by tree hash, the
 * no-change path, and S3 going down mid-workspace (a typed retryable error, then `syncWithRetry`
 * completes once S3 is back).
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { S3BlobStore } from '../src/storage/blobs/index.js';
import { syncWithRetry, type WorkspaceSyncError } from '../src/workspaces/sync/index.js';
import { startMoto, type TestMoto } from './helpers/moto.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { buildTree, syncFixture } from './helpers/workspace-fixture.js';
import { treeHash } from './helpers/workspace-tree.js';

describe('workspace sync (s3 blob store on moto)', () => {
  let moto: TestMoto;
  let proxy: TcpProxy;
  let store: S3BlobStore;
  before(async () => {
    moto = await startMoto();
    const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
    const admin = new S3Client({ endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
    try {
      await admin.send(new CreateBucketCommand({ Bucket: 'mags-ws' }));
    } finally {
      admin.destroy();
    }
    proxy = new TcpProxy(moto.port);
    await proxy.up();
    store = new S3BlobStore({ bucket: 'mags-ws', endpoint: `http://127.0.0.1:${proxy.port}`, region: 'us-east-1', forcePathStyle: true, credentials, maxAttempts: 2 });
  });
  after(async () => {
    await store?.close();
    await proxy?.down();
    await moto?.stop();
  });

  it('round-trips a tree with every file type and skips an unchanged one', async () => {
    const f = await syncFixture({}, store);
    try {
      await mkdir(f.layer('src'));
      await buildTree(f.layer('src'));
      const r = await f.sync.sync('s3rt', f.layer('src'));
      assert.ok(r.version);
      const same = await f.sync.sync('s3rt', f.layer('src'));
      assert.equal(same.version, undefined);
      assert.equal(same.readBytes, 0);
      await f.sync.restore('s3rt', f.layer('dst'));
      assert.deepEqual((await treeHash(f.layer('dst'), { mtimes: true })).lines, (await treeHash(f.layer('src'), { mtimes: true })).lines);
    } finally {
      await f.cleanup();
    }
  });

  it('S3 down during a sync: STORE_UNAVAILABLE (retryable), previous version intact, then the retry loop completes', async () => {
    const f = await syncFixture({}, store);
    try {
      const src = f.layer('src');
      await mkdir(src);
      await writeFile(join(src, 'a'), 'one');
      const v1 = await f.sync.sync('s3down', src);
      await writeFile(join(src, 'b'), 'two');
      await proxy.down();
      try {
        await assert.rejects(f.sync.sync('s3down', src), (err: WorkspaceSyncError) => {
          assert.equal(err.code, 'STORE_UNAVAILABLE');
          assert.equal(err.retryable, true);
          return true;
        });
        const retries: number[] = [];
        const pending = syncWithRetry(f.sync, 's3down', src, {
          baseDelayMs: 100,
          onRetry: (_err, attempt) => {
            retries.push(attempt);
            if (attempt === 2) void proxy.up();
          },
        });
        const v2 = await pending;
        assert.ok(retries.length >= 2, `retried ${retries.length} times`);
        assert.ok(v2.version && v2.version > v1.version!);
      } finally {
        if (!proxy.isUp) await proxy.up();
      }
      await f.sync.restore('s3down', f.layer('dst'));
      assert.equal((await treeHash(f.layer('dst'))).hash, (await treeHash(src)).hash);
    } finally {
      await f.cleanup();
    }
  });
});
