/**
 * Uploads end to end against a real server with real sandboxes: 5 MB of random bytes through the
 * Node SDK and through a raw multipart HTTP request, checked inside the sandbox with sha256sum, and
 * `mags run -f a -f b`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Mags } from '@mags/sdk';
import { cleanEnv, mags, startServer, tempHome, type TestServer } from './helpers.js';

describe('uploads against a real server', () => {
  let server: TestServer;
  let home: string;
  let removeHome: () => void;
  let dir: string;
  let client: Mags;
  const data = randomBytes(5 * 1024 * 1024);
  const sha = createHash('sha256').update(data).digest('hex');
  before(async () => {
    server = await startServer();
    ({ home, remove: removeHome } = tempHome());
    dir = mkdtempSync(join(tmpdir(), 'mags-up-'));
    writeFileSync(join(dir, 'random.bin'), data);
    client = new Mags({ apiUrl: server.url, apiToken: server.token });
  });
  after(async () => {
    try {
      await server?.stop();
    } finally {
      removeHome?.();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  test('Node SDK: uploadFile then run with fileIds; run(..., { files }) uploads for you', async () => {
    const up = await client.uploadFile(join(dir, 'random.bin'));
    assert.deepEqual([up.name, up.size, up.sha256], ['random.bin', data.length, sha]);
    const r = await client.runAndWait('sha256sum /root/random.bin; stat -c "%a %U" /root/random.bin', { fileIds: [up.fileId], timeout: 120_000 });
    assert.equal(r.status, 'completed', JSON.stringify(r.logs));
    assert.deepEqual(r.logs.map((l) => l.message), [`${sha}  /root/random.bin`, '644 root']);
    const again = await client.runAndWait('sha256sum random.bin', { files: [join(dir, 'random.bin')], timeout: 120_000 });
    assert.deepEqual(again.logs.map((l) => l.message), [`${sha}  random.bin`]);
    const listed = (await client.listFiles()).files.map((f) => f.file_id);
    assert.ok(listed.includes(up.fileId));
    for (const id of listed) await client.deleteFile(id);
    assert.deepEqual((await client.listFiles()).files, []);
  });

  test('raw multipart HTTP (as curl -F sends it), then sha256sum in the sandbox', async () => {
    const boundary = '----curlish' + randomBytes(6).toString('hex');
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="raw.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
      data,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const res = await fetch(`${server.url}/api/v1/mags-files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
    });
    assert.equal(res.status, 201);
    const up = (await res.json()) as { file_id: string; sha256: string; size: number };
    assert.equal(up.sha256, sha);
    try {
      const r = await client.runAndWait('sha256sum raw.bin', { fileIds: [up.file_id], timeout: 120_000 });
      assert.deepEqual(r.logs.map((l) => l.message), [`${sha}  raw.bin`]);
    } finally {
      await client.deleteFile(up.file_id);
    }
  });

  test("mags run -f a -f b 'ls -l /root'", async () => {
    writeFileSync(join(dir, 'a'), 'first\n');
    writeFileSync(join(dir, 'b'), 'second file\n');
    const env = cleanEnv({ HOME: home, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token });
    const r = await mags(['run', '-f', join(dir, 'a'), '-f', join(dir, 'b'), 'ls -l /root && cat /root/a /root/b'], { env, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /-rw-r--r-- 1 root root\s+6 .* a\n/);
    assert.match(r.stdout, /-rw-r--r-- 1 root root\s+12 .* b\n/);
    assert.match(r.stdout, /first\nsecond file\n/);
    const missing = await mags(['run', '-f', join(dir, 'nope'), 'true'], { env });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /nope/);
    for (const f of (await client.listFiles()).files) await client.deleteFile(f.file_id);
  });
});
