/**
 * The blob store conformance suite on both drivers: the filesystem driver on a temp dir and the S3
 * driver on a real S3 protocol server (moto on a loopback port), plus what only S3 has (prefixes,
 * multipart uploads, a missing bucket).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobStoreError, createBlobStore, FsBlobStore, S3BlobStore, type S3BlobStoreOptions } from '../src/storage/blobs/index.js';
import { blobStoreConformance, digest, patternBody } from './helpers/blob-conformance.js';
import { startMoto, type TestMoto } from './helpers/moto.js';

const MIB = 1024 * 1024;

describe('fs blob store', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mags-blobs-'));
  });
  after(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });
  blobStoreConformance('fs', () => createBlobStore({ driver: 'fs', root: join(root, 'blobs') }));
});

describe('s3 blob store on moto', () => {
  let moto: TestMoto;
  let admin: S3Client;
  const bucket = 'mags-test';
  const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
  // moto answers 500 now and then when one key is overwritten by concurrent requests (it closes the
  // replaced object's buffer while another request still reads it); S3 does not, so retry more here.
  const options = (over: Partial<S3BlobStoreOptions> = {}): S3BlobStoreOptions => ({
    bucket, endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials, partSizeBytes: 5 * MIB, maxAttempts: 10, ...over,
  });
  before(async () => {
    moto = await startMoto();
    admin = new S3Client({ endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  });
  after(async () => {
    admin?.destroy();
    await moto?.stop();
  });

  blobStoreConformance('s3 (moto)', () => createBlobStore({ driver: 's3', ...options() }));
  // Under a prefix, with small list pages so pagination is exercised without another thousand puts.
  blobStoreConformance(
    's3 (moto) under a prefix',
    () => createBlobStore({ driver: 's3', ...options({ prefix: 'tenant/one/', listPageSize: 7 }) }),
    { largeBytes: MIB, manyKeys: 40 },
  );

  it('keeps a prefixed store inside its prefix', async () => {
    const inner = new S3BlobStore(options({ prefix: 'iso/inner' }));
    const whole = new S3BlobStore(options());
    try {
      await inner.put('a/b', Buffer.from('in'));
      assert.equal((await whole.head('iso/inner/a/b'))?.size, 2, 'the object sits under the prefix');
      await whole.put('iso/outside', Buffer.from('out'));
      const listed: string[] = [];
      for await (const key of inner.list('')) listed.push(key);
      assert.deepEqual(listed, ['a/b'], 'the prefixed store sees only its own keys, without the prefix');
      assert.equal(await inner.head('iso/outside'), undefined);
    } finally {
      await inner.close();
      await whole.close();
    }
  });

  it('uploads a large streamed blob as a multipart upload of bounded parts', async () => {
    const store = new S3BlobStore(options({ queueSize: 2 }));
    try {
      const body = patternBody(11 * MIB);
      await store.put('multipart/big', body.stream);
      const head = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: 'multipart/big' }));
      assert.match(head.ETag ?? '', /-3"?$/, 'three 5 MiB parts (a multipart ETag ends in -<parts>)');
      const got = await store.get('multipart/big');
      assert.ok(got);
      assert.equal((await digest(got)).sha256, body.sha256());
    } finally {
      await store.close();
    }
  });

  it('reports a missing bucket as a BlobStoreError, not as a missing key', async () => {
    const store = new S3BlobStore(options({ bucket: 'no-such-bucket' }));
    try {
      await assert.rejects(store.put('x', Buffer.from('x')), BlobStoreError);
      await assert.rejects(store.get('x'), BlobStoreError);
      await assert.rejects(async () => {
        for await (const key of store.list('')) assert.fail(`listed ${key}`);
      }, BlobStoreError);
    } finally {
      await store.close();
    }
  });
});

describe('createBlobStore', () => {
  it('opens the driver the options name and refuses an unknown one', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mags-blobs-'));
    try {
      const fs = await createBlobStore({ driver: 'fs', root });
      assert.ok(fs instanceof FsBlobStore);
      assert.equal(fs.driver, 'fs');
      await fs.close();
      const s3 = await createBlobStore({ driver: 's3', bucket: 'b', region: 'us-east-1', endpoint: 'http://127.0.0.1:1' });
      assert.ok(s3 instanceof S3BlobStore);
      await s3.close();
      await assert.rejects(createBlobStore({ driver: 'ftp' } as never), /unknown blob store driver "ftp": use "fs" or "s3"/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
