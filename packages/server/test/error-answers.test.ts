/**
 * Error answers of a real server: a wrong method on an existing path is 405 with `Allow`, a path with
 * bad percent-encoding gets the registry shape and `x-request-id`, and no 4xx answer is logged at
 * error level.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES } from '@mags/shared';
import { spawnServer } from './helpers/spawn-server.js';

test('4xx answers: registry shape and x-request-id, 405 with Allow, never an error-level log line', async () => {
  const server = await spawnServer();
  try {
    const auth = { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' };
    const cases: { method: string; path: string; headers?: Record<string, string>; body?: string; status: number; code: string }[] = [
      { method: 'DELETE', path: '/api/v1/mags-jobs', headers: auth, status: 405, code: 'METHOD_NOT_ALLOWED' },
      { method: 'PUT', path: '/health', status: 405, code: 'METHOD_NOT_ALLOWED' },
      { method: 'GET', path: '/api/v1/mags-jobs/%zz/status', headers: auth, status: 400, code: 'VALIDATION_ERROR' },
      { method: 'GET', path: '/nothing-here', status: 404, code: 'NOT_FOUND' },
      { method: 'GET', path: '/api/v1/mags-jobs', status: 401, code: 'AUTH_REQUIRED' },
      { method: 'GET', path: '/api/v1/mags-jobs/nope/status', headers: auth, status: 404, code: 'JOB_NOT_FOUND' },
      { method: 'POST', path: '/api/v1/mags-jobs', headers: auth, body: '{bad', status: 400, code: 'INVALID_JSON' },
      { method: 'POST', path: '/api/v2/mags-jobs', headers: auth, body: '{"script":"x","type":"inline","vcpus":1e400}', status: 400, code: 'VALIDATION_ERROR' },
      { method: 'POST', path: '/api/v1/mags-jobs', headers: { ...auth, 'content-type': 'text/plain' }, body: 'x', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    ];
    for (const c of cases) {
      const res = await fetch(server.url + c.path, { method: c.method, headers: c.headers, body: c.body });
      const text = await res.text();
      const what = `${c.method} ${c.path}: ${res.status} ${text.slice(0, 300)}`;
      assert.equal(res.status, c.status, what);
      const body = JSON.parse(text) as { error: string; code: string };
      assert.equal(body.code, c.code, what);
      assert.ok(body.code in ERROR_CODES, what);
      assert.ok(typeof body.error === 'string' && body.error.length > 0, what);
      assert.match(res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, `${what}: x-request-id`);
      if (c.status === 405) assert.ok(res.headers.get('allow'), `${what}: Allow header`);
    }
    const bad = await (await fetch(`${server.url}/api/v2/mags-jobs`, { method: 'POST', headers: auth, body: '{"script":"x","type":"inline","vcpus":1e400}' })).json() as { error: string };
    assert.equal(bad.error, 'vcpus: must be a finite number');
    const errorLines = server
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: string; msg?: string })
      .filter((l) => l.level === 'error' || l.level === 'fatal');
    assert.deepEqual(errorLines, [], 'no error-level log lines for 4xx answers');
  } finally {
    await server.stop();
  }
});
