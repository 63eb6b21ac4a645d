import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ERROR_CODES } from '@mags/shared';
import { createHarness, type Harness } from './helpers/harness.js';

interface Case {
  name: string;
  method?: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  url?: string;
  /** Object = JSON body; string = raw body. */
  body?: unknown;
  headers?: Record<string, string>;
  /** 'admin' (default), 'none', 'other' (a second user) or a literal Authorization header. */
  auth?: 'admin' | 'none' | 'other' | { header: string };
  status: number;
  code: keyof typeof ERROR_CODES;
  /** The error message must match. */
  message?: RegExp;
}

const MiB = 1024 * 1024;
const SUBMIT = '/api/v1/mags-jobs';

/**
 * Bad input, table-driven: each case asserts the status, the registry code and the message, and
 * that no job row was written.
 */
describe('bad input', () => {
  let h: Harness;
  let otherToken: string;
  let adminJob: string;
  before(async () => {
    h = await createHarness({ bodyLimitBytes: 2 * MiB });
    otherToken = await h.makeUser('mallory');
    const res = await h.app.inject({ method: 'POST', url: SUBMIT, headers: { authorization: `Bearer ${h.adminToken}` }, payload: { script: 'echo hi', type: 'inline', name: 'admins-job' } });
    adminJob = (res.json() as { request_id: string }).request_id;
    await h.waitDone(h.adminToken, adminJob);
  });
  after(async () => {
    await h?.close();
  });

  const cases: Case[] = [
    // Submit body shapes.
    { name: 'missing script', body: { type: 'inline' }, status: 400, code: 'VALIDATION_ERROR', message: /^script: Required$/ },
    { name: 'missing type', body: { script: 'echo' }, status: 400, code: 'VALIDATION_ERROR', message: /'type' is required and must be "inline"/ },
    { name: 'type not inline', body: { script: 'echo', type: 'file' }, status: 400, code: 'VALIDATION_ERROR', message: /'type' is required and must be "inline"/ },
    { name: 'script is a number', body: { script: 42, type: 'inline' }, status: 400, code: 'VALIDATION_ERROR', message: /^script: must be a string, got number$/ },
    { name: 'script is null', body: { script: null, type: 'inline' }, status: 400, code: 'VALIDATION_ERROR', message: /^script: must be a string, got null$/ },
    { name: 'empty script', body: { script: '   ', type: 'inline' }, status: 400, code: 'VALIDATION_ERROR', message: /script: must not be empty/ },
    { name: 'persistent is a string', body: { script: 'x', type: 'inline', persistent: 'yes' }, status: 400, code: 'VALIDATION_ERROR', message: /^persistent: must be a boolean, got string$/ },
    { name: 'environment is an array', body: { script: 'x', type: 'inline', environment: ['A=1'] }, status: 400, code: 'VALIDATION_ERROR', message: /^environment: must be an object, got array$/ },
    { name: 'environment value is a number', body: { script: 'x', type: 'inline', environment: { A: 1 } }, status: 400, code: 'VALIDATION_ERROR', message: /^environment\.A: must be a string, got number$/ },
    { name: 'environment bad name', body: { script: 'x', type: 'inline', environment: { 'A B': '1' } }, status: 400, code: 'VALIDATION_ERROR', message: /not a valid variable name/ },
    { name: 'disk_gb is 0', body: { script: 'x', type: 'inline', disk_gb: 0 }, status: 400, code: 'VALIDATION_ERROR', message: /^disk_gb: must be at least 1$/ },
    { name: 'disk_gb is fractional', body: { script: 'x', type: 'inline', disk_gb: 1.5 }, status: 400, code: 'VALIDATION_ERROR', message: /^disk_gb: must be (a whole number|an integer)/ },
    { name: 'v2 vcpus is a string', url: '/api/v2/mags-jobs', body: { script: 'x', type: 'inline', vcpus: 'two' }, status: 400, code: 'VALIDATION_ERROR', message: /^vcpus: must be a number, got string$/ },
    { name: 'v2 memory_mb too small', url: '/api/v2/mags-jobs', body: { script: 'x', type: 'inline', memory_mb: 1 }, status: 400, code: 'VALIDATION_ERROR', message: /^memory_mb: must be at least 64$/ },
    { name: 'no_sleep without persistent', body: { script: 'x', type: 'inline', no_sleep: true }, status: 400, code: 'VALIDATION_ERROR', message: /no_sleep: needs "persistent": true/ },
    { name: 'file_ids naming no upload', body: { script: 'x', type: 'inline', file_ids: ['f1'] }, status: 404, code: 'FILE_NOT_FOUND', message: /"f1"/ },
    { name: 'body is an array', body: [1, 2], status: 400, code: 'VALIDATION_ERROR', message: /^request body: must be an object, got array$/ },
    { name: 'body is a JSON string', body: '"echo hi"', headers: { 'content-type': 'application/json' }, status: 400, code: 'VALIDATION_ERROR', message: /^request body: must be an object, got string$/ },
    { name: 'no body at all', body: undefined, status: 400, code: 'VALIDATION_ERROR', message: /^request body: Required/ },
    { name: 'NUL in script', body: { script: 'echo \u0000', type: 'inline' }, status: 400, code: 'VALIDATION_ERROR', message: /^script: must not contain NUL characters$/ },
    // Sizes.
    { name: 'script over 1 MiB (body under the limit)', body: { script: 'x'.repeat(MiB + 10), type: 'inline' }, status: 413, code: 'PAYLOAD_TOO_LARGE', message: /script is 1048586 bytes; the limit is 1048576 bytes/ },
    { name: 'body over the 2 MiB limit', body: { script: 'x'.repeat(3 * MiB), type: 'inline' }, status: 413, code: 'PAYLOAD_TOO_LARGE', message: /larger than the server accepts/ },
    // Hostile names.
    { name: '10 KB name', body: { script: 'x', type: 'inline', name: 'n'.repeat(10_000) }, status: 400, code: 'VALIDATION_ERROR', message: /^name: must be at most 128 characters$/ },
    // Transport.
    { name: 'malformed JSON', body: '{"script": "echo", "type": ', headers: { 'content-type': 'application/json' }, status: 400, code: 'INVALID_JSON', message: /not valid JSON/ },
    { name: 'wrong content-type', body: 'script=echo', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: /application\/json/ },
    { name: 'text/plain body', body: 'echo hi', headers: { 'content-type': 'text/plain' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    // Auth.
    { name: 'no token', auth: 'none', body: { script: 'x', type: 'inline' }, status: 401, code: 'AUTH_REQUIRED', message: /API token required/ },
    { name: 'invalid token', auth: { header: 'Bearer mags_' + 'A'.repeat(40) }, body: { script: 'x', type: 'inline' }, status: 401, code: 'INVALID_TOKEN', message: /Invalid API token/ },
    { name: 'not a bearer header', auth: { header: 'Basic YWRtaW46YWRtaW4=' }, body: { script: 'x', type: 'inline' }, status: 401, code: 'AUTH_REQUIRED' },
    { name: 'SQL in the token', auth: { header: "Bearer ' OR 1=1 --" }, method: 'GET', url: SUBMIT, status: 401, code: 'AUTH_REQUIRED' },
    { name: 'SQL-ish single-word token', auth: { header: "Bearer 'OR'1'='1" }, method: 'GET', url: SUBMIT, status: 401, code: 'INVALID_TOKEN' },
    // Lookups.
    { name: 'unknown id status', method: 'GET', url: `${SUBMIT}/00000000-0000-0000-0000-000000000000/status`, status: 404, code: 'JOB_NOT_FOUND', message: /No job of yours/ },
    { name: 'unknown id logs', method: 'GET', url: `${SUBMIT}/nope/logs`, status: 404, code: 'JOB_NOT_FOUND' },
    { name: 'unknown id stop', method: 'POST', url: `${SUBMIT}/nope/stop`, status: 404, code: 'JOB_NOT_FOUND' },
    { name: 'SQL injection id', method: 'GET', url: `${SUBMIT}/${encodeURIComponent("x' OR '1'='1")}/status`, status: 404, code: 'JOB_NOT_FOUND' },
    { name: 'unicode id', method: 'GET', url: `${SUBMIT}/${encodeURIComponent('名前🙂')}/status`, status: 404, code: 'JOB_NOT_FOUND' },
    { name: '10 KB id', method: 'GET', url: `${SUBMIT}/${'z'.repeat(10_000)}/status`, status: 404, code: 'JOB_NOT_FOUND' },
    { name: "another user's job by id", auth: 'other', method: 'GET', url: 'ADMIN_JOB_STATUS', status: 404, code: 'JOB_NOT_FOUND' },
    { name: "another user's job by name", auth: 'other', method: 'GET', url: `${SUBMIT}/admins-job/logs`, status: 404, code: 'JOB_NOT_FOUND' },
    { name: "stop another user's job", auth: 'other', method: 'POST', url: `${SUBMIT}/admins-job/stop`, status: 404, code: 'JOB_NOT_FOUND' },
    // Query strings.
    { name: 'page_size 0', method: 'GET', url: `${SUBMIT}?page_size=0`, status: 400, code: 'VALIDATION_ERROR', message: /^page_size: must be at least 1$/ },
    { name: 'page_size -1', method: 'GET', url: `${SUBMIT}?page_size=-1`, status: 400, code: 'VALIDATION_ERROR', message: /^page_size: must be at least 1$/ },
    { name: 'page_size not a number', method: 'GET', url: `${SUBMIT}?page_size=abc`, status: 400, code: 'VALIDATION_ERROR', message: /^page_size: must be a number/ },
    { name: 'page 0', method: 'GET', url: `${SUBMIT}?page=0`, status: 400, code: 'VALIDATION_ERROR', message: /^page: must be at least 1$/ },
    { name: 'logs after=-5', method: 'GET', url: `${SUBMIT}/admins-job/logs?after=-5`, status: 400, code: 'VALIDATION_ERROR', message: /^after: must be at least 0$/ },
    { name: 'logs limit over 10000', method: 'GET', url: `${SUBMIT}/admins-job/logs?limit=10001`, status: 400, code: 'VALIDATION_ERROR', message: /^limit: must be at most 10000$/ },
    { name: 'logs follow=maybe', method: 'GET', url: `${SUBMIT}/admins-job/logs?follow=maybe`, status: 400, code: 'VALIDATION_ERROR', message: /^follow: must be/ },
    // Other endpoints.
    { name: 'access port out of range', method: 'POST', url: `${SUBMIT}/admins-job/access`, body: { port: 70000 }, status: 400, code: 'VALIDATION_ERROR', message: /^port: must be at most 65535$/ },
    { name: 'patch no_sleep not boolean', method: 'PATCH', url: `${SUBMIT}/admins-job`, body: { no_sleep: 'yes' }, status: 400, code: 'VALIDATION_ERROR', message: /^no_sleep: must be a boolean, got string$/ },
    { name: 'patch no_sleep on ephemeral job', method: 'PATCH', url: `${SUBMIT}/admins-job`, body: { no_sleep: true }, status: 422, code: 'INVALID_STATE', message: /persistent/ },
    { name: 'revoke unknown token', method: 'DELETE', url: '/api/v1/tokens/nope', status: 404, code: 'TOKEN_NOT_FOUND' },
    { name: 'create user without name', method: 'POST', url: '/api/v1/users', body: {}, status: 400, code: 'VALIDATION_ERROR', message: /^name: Required$/ },
    { name: 'create user as non-admin', auth: 'other', method: 'POST', url: '/api/v1/users', body: { name: 'eve' }, status: 403, code: 'FORBIDDEN' },
    { name: 'unknown route', method: 'GET', url: '/api/v1/nothing-here', status: 404, code: 'NOT_FOUND', message: /No endpoint GET \/api\/v1\/nothing-here/ },
    { name: 'wrong method on an existing path', method: 'DELETE', url: SUBMIT, status: 405, code: 'METHOD_NOT_ALLOWED', message: /^DELETE is not allowed on \/api\/v1\/mags-jobs; it accepts (GET|POST)/ },
    { name: 'wrong method on a path with a parameter', method: 'GET', url: `${SUBMIT}/admins-job/stop`, status: 405, code: 'METHOD_NOT_ALLOWED', message: /accepts POST/ },
    { name: 'v2 vcpus is 1e400 (Infinity)', url: '/api/v2/mags-jobs', body: '{"script": "x", "type": "inline", "vcpus": 1e400}', headers: { 'content-type': 'application/json' }, status: 400, code: 'VALIDATION_ERROR', message: /^vcpus: must be a finite number$/ },
  ];

  for (const c of cases) {
    it(`${c.name} -> ${c.status} ${c.code}`, async () => {
      const headers: Record<string, string> = { ...c.headers };
      const a = c.auth ?? 'admin';
      if (a === 'admin') headers.authorization = `Bearer ${h.adminToken}`;
      else if (a === 'other') headers.authorization = `Bearer ${otherToken}`;
      else if (typeof a === 'object') headers.authorization = a.header;
      const url = c.url === 'ADMIN_JOB_STATUS' ? `${SUBMIT}/${adminJob}/status` : (c.url ?? SUBMIT);
      const method = c.method ?? 'POST';
      const before = await h.stores.jobs.countJobs();
      const res = await h.app.inject({
        method,
        url,
        headers,
        ...(c.body === undefined ? {} : { payload: typeof c.body === 'string' ? c.body : JSON.stringify(c.body) }),
        ...(c.body !== undefined && typeof c.body !== 'string' ? { headers: { 'content-type': 'application/json', ...headers } } : {}),
      });
      assert.equal(res.statusCode, c.status, res.body.slice(0, 500));
      assert.equal(ERROR_CODES[c.code].status, c.status, 'the case agrees with the registry');
      const body = res.json() as { error: string; code: string; hint?: string };
      assert.equal(body.code, c.code, res.body.slice(0, 500));
      assert.equal(typeof body.error, 'string');
      assert.ok(body.error.length > 0 && body.error.length < 2000, 'the message is short and present');
      if (c.message) assert.match(body.error, c.message);
      assert.equal(await h.stores.jobs.countJobs(), before, 'no job row was written');
    });
  }

  it('hostile names are stored literally and harmlessly', async () => {
    const auth = { authorization: `Bearer ${h.adminToken}` };
    for (const name of ["x'); DROP TABLE jobs; --", '名前🙂\u202e', '../../etc/passwd', '<script>alert(1)</script>']) {
      const res = await h.app.inject({ method: 'POST', url: SUBMIT, headers: auth, payload: { script: 'true', type: 'inline', name } });
      assert.equal(res.statusCode, 202, res.body);
      const st = await h.app.inject({ method: 'GET', url: `${SUBMIT}/${encodeURIComponent(name)}/status`, headers: auth });
      assert.equal(st.statusCode, 200, st.body);
      assert.equal((st.json() as { name: string }).name, name);
    }
    assert.ok((await h.stores.jobs.countJobs()) >= 5);
  });

  it('random bodies never cause a 500 and always answer a registry error or 202', async () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const values = (): unknown => {
      const pick = Math.floor(rnd() * 12);
      return [null, true, 0, -1, 1.5, 1e308, '', 'x', '\u0000', 'é🙂', [], { a: 1 }][pick];
    };
    const fields = ['script', 'type', 'name', 'workspace_id', 'persistent', 'no_sleep', 'environment', 'file_ids', 'disk_gb', 'vcpus', 'memory_mb', 'timeout_seconds', 'startup_command'];
    for (let i = 0; i < 300; i++) {
      const body: Record<string, unknown> = {};
      for (const f of fields) if (rnd() < 0.5) body[f] = values();
      if (rnd() < 0.3) {
        body.script = 'true';
        body.type = 'inline';
      }
      const res = await h.app.inject({
        method: 'POST',
        url: rnd() < 0.5 ? SUBMIT : '/api/v2/mags-jobs',
        headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      });
      assert.ok([202, 400, 413, 501].includes(res.statusCode), `${res.statusCode} for ${JSON.stringify(body)}: ${res.body}`);
      if (res.statusCode !== 202) {
        const err = res.json() as { code: string; error: string };
        assert.ok(err.code in ERROR_CODES && err.error.length > 0, res.body);
      }
    }
  });

  it('unknown fields are ignored', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: SUBMIT,
      headers: { authorization: `Bearer ${h.adminToken}` },
      payload: { script: 'true', type: 'inline', surprise: { deep: [1, 2] }, __proto__: { admin: true } },
    });
    assert.equal(res.statusCode, 202, res.body);
  });
});
