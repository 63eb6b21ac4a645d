import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createHarness, type Harness } from './helpers/harness.js';

const LIMIT = 64 * 1024;

/** A multipart/form-data body with one part; `disposition` is the part's Content-Disposition parameters. */
function multipart(disposition: string, data: Buffer): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----mags${randomBytes(8).toString('hex')}`;
  const payload = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; ${disposition}\r\nContent-Type: application/octet-stream\r\n\r\n`, 'latin1'),
    data,
    Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
  ]);
  return { payload, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** Uploads, listing, deletion and file_ids in-process (fake sandboxes, real SQLite, real filesystem blob store). */
describe('uploads API (in-process)', () => {
  let h: Harness;
  let auth: Record<string, string>;
  let other: Record<string, string>;
  before(async () => {
    h = await createHarness({ maxUploadBytes: LIMIT });
    auth = { authorization: `Bearer ${h.adminToken}` };
    other = { authorization: `Bearer ${await h.makeUser('mallory')}` };
  });
  after(async () => {
    await h?.close();
  });

  const upload = async (disposition: string, data: Buffer, headers = auth) => {
    const m = multipart(disposition, data);
    return h.app.inject({ method: 'POST', url: '/api/v1/mags-files', headers: { ...headers, ...m.headers }, payload: m.payload });
  };
  const blobKeys = async () => {
    const keys: string[] = [];
    for await (const k of h.blobs.list('uploads/')) keys.push(k);
    return keys.sort();
  };
  const listFiles = async (headers = auth) => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/mags-files', headers });
    assert.equal(res.statusCode, 200, res.body);
    return (res.json() as { files: Array<{ file_id: string; name: string; size: number; sha256: string }> }).files;
  };
  const remove = (id: string, headers = auth) => h.app.inject({ method: 'DELETE', url: `/api/v1/mags-files/${id}`, headers });

  it('stores a multipart upload and answers 201 with file_id, name, size and sha256', async () => {
    const data = randomBytes(40_000);
    const res = await upload('name="file"; filename="data.bin"', data);
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json() as { file_id: string; name: string; size: number; sha256: string };
    assert.equal(body.name, 'data.bin');
    assert.equal(body.size, data.length);
    assert.equal(body.sha256, createHash('sha256').update(data).digest('hex'));
    assert.ok((await listFiles()).some((f) => f.file_id === body.file_id));
    assert.deepEqual(await blobKeys(), [`uploads/${body.file_id}`]);
    const stored = await h.blobs.get(`uploads/${body.file_id}`);
    const chunks: Buffer[] = [];
    for await (const c of stored!) chunks.push(c as Buffer);
    assert.ok(Buffer.concat(chunks).equals(data));
    assert.equal((await remove(body.file_id)).statusCode, 200);
    assert.deepEqual(await blobKeys(), []);
  });

  it('refuses a file over MAGS_MAX_UPLOAD_BYTES with 413 and leaves no row and no blob', async () => {
    const before = (await listFiles()).length;
    const res = await upload('name="file"; filename="big.bin"', randomBytes(LIMIT + 1));
    assert.equal(res.statusCode, 413, res.body);
    assert.equal(res.json().code, 'PAYLOAD_TOO_LARGE');
    assert.equal((await listFiles()).length, before);
    assert.deepEqual(await blobKeys(), []);
    // Exactly the limit is accepted.
    const ok = await upload('name="file"; filename="edge.bin"', randomBytes(LIMIT));
    assert.equal(ok.statusCode, 201, ok.body);
    assert.equal((await remove(ok.json().file_id)).statusCode, 200);
  });

  it('refuses hostile and empty file names with 400 and stores nothing', async () => {
    const cases: Array<[string, string]> = [
      ['empty', 'filename=""'],
      ['dot', 'filename="."'],
      ['dotdot', 'filename=".."'],
      ['slash', 'filename="../etc/passwd"'],
      ['absolute', 'filename="/etc/passwd"'],
      ['NUL', "filename*=UTF-8''a%00b"],
      ['newline', "filename*=UTF-8''a%0Ab"],
      ['escape', "filename*=UTF-8''a%1Bb"],
      ['too long', `filename="${'x'.repeat(256)}"`],
      ['too long in UTF-8', `filename*=UTF-8''${encodeURIComponent('é'.repeat(128))}`],
    ];
    for (const [what, disp] of cases) {
      const res = await upload(`name="file"; ${disp}`, Buffer.from('hello'));
      assert.equal(res.statusCode, 400, `${what}: ${res.body}`);
      assert.equal(res.json().code, 'VALIDATION_ERROR', what);
    }
    const noPart = await upload('name="other"; filename="a.txt"', Buffer.from('x'));
    assert.equal(noPart.statusCode, 400, noPart.body);
    const json = await h.app.inject({ method: 'POST', url: '/api/v1/mags-files', headers: auth, payload: { file: 'x' } });
    assert.equal(json.statusCode, 415, json.body);
    assert.deepEqual(await listFiles(), []);
    assert.deepEqual(await blobKeys(), []);
    const longest = await upload(`name="file"; filename="${'y'.repeat(255)}"`, Buffer.from('ok'));
    assert.equal(longest.statusCode, 201, longest.body);
    assert.equal((await remove(longest.json().file_id)).statusCode, 200);
  });

  it("hides another user's file: list, delete and file_ids answer as if it did not exist", async () => {
    const res = await upload('name="file"; filename="secret.txt"', Buffer.from('secret'));
    assert.equal(res.statusCode, 201, res.body);
    const id = (res.json() as { file_id: string }).file_id;
    try {
      assert.deepEqual(await listFiles(other), []);
      const del = await remove(id, other);
      assert.equal(del.statusCode, 404, del.body);
      assert.equal(del.json().code, 'FILE_NOT_FOUND');
      const sub = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: other, payload: { script: 'cat secret.txt', type: 'inline', file_ids: [id] } });
      assert.equal(sub.statusCode, 404, sub.body);
      assert.equal(sub.json().code, 'FILE_NOT_FOUND');
      assert.ok(sub.json().error.includes(id), 'the message names the id');
      const unknown = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: auth, payload: { script: 'true', type: 'inline', file_ids: ['no-such-file'] } });
      assert.equal(unknown.statusCode, 404, unknown.body);
      assert.match(unknown.json().error, /no-such-file/);
    } finally {
      assert.equal((await remove(id)).statusCode, 200);
    }
    const again = await remove(id);
    assert.equal(again.statusCode, 404);
    assert.equal(again.json().code, 'FILE_NOT_FOUND');
  });

  it('places file_ids in /root before the script starts, mode 0644', async () => {
    const a = await upload('name="file"; filename="a.txt"', Buffer.from('alpha\n'));
    const b = await upload('name="file"; filename="-dash b.txt"', Buffer.from('beta\n'));
    assert.equal(a.statusCode, 201, a.body);
    assert.equal(b.statusCode, 201, b.body);
    const ids = [a.json().file_id as string, b.json().file_id as string];
    try {
      const sub = await h.app.inject({
        method: 'POST',
        url: '/api/v1/mags-jobs',
        headers: auth,
        payload: { script: 'cat a.txt ./-dash\\ b.txt && stat -c %a a.txt && ls -A | grep -c mags-upload || true', type: 'inline', file_ids: ids },
      });
      assert.equal(sub.statusCode, 202, sub.body);
      const id = sub.json().request_id as string;
      const done = await h.waitDone(h.adminToken, id);
      assert.equal(done.status, 'completed', JSON.stringify(done));
      const logs = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${id}/logs`, headers: auth });
      const lines = (logs.json() as { logs: Array<{ message: string }> }).logs.map((l) => l.message);
      assert.deepEqual(lines, ['alpha', 'beta', '644', '0']);
    } finally {
      for (const id of ids) await remove(id);
    }
  });

  it('ends a job in error with end_reason sandbox_failed when a file cannot be placed', async () => {
    const res = await upload('name="file"; filename="gone.txt"', Buffer.from('soon gone'));
    const fileId = res.json().file_id as string;
    try {
      // The row stays, the bytes vanish: the submit check passes, placing the file fails.
      await h.blobs.delete(`uploads/${fileId}`);
      const sub = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: auth, payload: { script: 'echo ran', type: 'inline', file_ids: [fileId] } });
      assert.equal(sub.statusCode, 202, sub.body);
      const done = await h.waitDone(h.adminToken, sub.json().request_id);
      assert.equal(done.status, 'error');
      assert.equal(done.end_reason, 'sandbox_failed');
      const logs = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${sub.json().request_id}/logs`, headers: auth });
      const text = logs.body;
      assert.ok(!text.includes('"ran"'), 'the script did not run');
      assert.match(text, /gone\.txt/);
    } finally {
      await remove(fileId);
    }
  });
});
