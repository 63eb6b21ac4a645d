/** URL forms, retries, misspelled options and bad URLs of the Node SDK, with an injected fetch. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionError, Mags, MagsError, ValidationError } from '../src/index.js';
import { HttpClient, parseRetryAfter } from '../src/http.js';
import { answer } from '../src/api/answers.js';
import { fakeFetch, json } from './fake-fetch.js';

const TOKEN = 'mags_unit';

test('the API URL may end in /, /api/v1 or /api/v1/; v1 and v2 paths still reach /api/v{1,2}/...', async () => {
  for (const apiUrl of ['http://h:8090', 'http://h:8090/', 'http://h:8090/api/v1', 'http://h:8090/api/v1/']) {
    const { fetch, requests } = fakeFetch(() => json(200, { jobs: [], page: 1, page_size: 20, total: 0 }));
    const mags = new Mags({ apiToken: TOKEN, apiUrl, fetch });
    assert.equal(mags.apiUrl, 'http://h:8090', apiUrl);
    await mags.list();
    assert.equal(requests[0].url.toString(), 'http://h:8090/api/v1/mags-jobs', apiUrl);
  }
  const { fetch, requests } = fakeFetch(() => json(202, { request_id: 'r', status: 'accepted', message: 'ok' }));
  await new Mags({ apiToken: TOKEN, apiUrl: 'http://h:8090/api/v1/', fetch }).run('true', { vcpus: 2 });
  assert.equal(requests[0].url.toString(), 'http://h:8090/api/v2/mags-jobs');
});

/** An HttpClient whose waits are recorded instead of slept. */
function client(responses: (() => Response | Promise<Response>)[], maxRetries?: number) {
  const { fetch, requests } = fakeFetch(() => {
    const next = responses.shift();
    assert.ok(next, 'more requests than answers');
    return next();
  });
  const waits: number[] = [];
  const http = new HttpClient({
    apiUrl: 'http://h',
    apiToken: TOKEN,
    timeoutMs: 5000,
    fetch,
    userAgent: 't',
    maxRetries,
    sleep: async (ms) => { waits.push(ms); },
  });
  return { http, requests, waits };
}

const OK = answer<{ ok: boolean }>({ ok: 'boolean' });
const busy = (status: number, headers: Record<string, string> = {}) => () =>
  new Response(JSON.stringify({ error: 'busy', code: status === 429 ? 'RATE_LIMITED' : 'SERVICE_UNAVAILABLE' }), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
const reset = () => () => {
  throw new TypeError('fetch failed', { cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) });
};

test('GET is retried after 429, 503 and a reset connection with growing, jittered backoff', async () => {
  const { http, requests, waits } = client([busy(429), reset(), busy(503), () => json(200, { ok: true })]);
  assert.deepEqual(await http.request({ method: 'GET', path: '/x', answer: OK }), { ok: true });
  assert.equal(requests.length, 4);
  assert.equal(waits.length, 3);
  for (const [i, ms] of waits.entries()) {
    assert.ok(ms >= 125 * 2 ** i && ms <= 250 * 2 ** i, `wait ${i} = ${ms}`);
  }
});

test('Retry-After in seconds or as an HTTP date sets the wait, capped at 30 s', async () => {
  const date = new Date(Date.now() + 5000).toUTCString();
  const { http, waits } = client([
    busy(503, { 'retry-after': '2' }),
    busy(429, { 'retry-after': date }),
    busy(429, { 'retry-after': '3600' }),
    () => json(200, { ok: true }),
  ]);
  await http.request({ method: 'DELETE', path: '/x', answer: OK });
  assert.equal(waits[0], 2000);
  assert.ok(waits[1] > 3000 && waits[1] <= 5000, `date wait ${waits[1]}`);
  assert.equal(waits[2], 30_000);
  assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:00 GMT')), 60_000);
  assert.equal(parseRetryAfter('soon'), undefined);
});

test('a call that still fails after maxRetries throws the typed error of the last answer', async () => {
  const { http, requests } = client([busy(429), busy(429), busy(503)], 2);
  await assert.rejects(http.request({ method: 'GET', path: '/x', answer: OK }), (err: unknown) => {
    assert.ok(err instanceof MagsError);
    assert.equal(err.status, 503);
    assert.equal(err.code, 'SERVICE_UNAVAILABLE');
    return true;
  });
  assert.equal(requests.length, 3);
});

test('POST (a submit) and non-retryable answers are never retried; maxRetries 0 turns retries off', async () => {
  const post = client([busy(503)]);
  await assert.rejects(post.http.request({ method: 'POST', path: '/api/v1/mags-jobs', body: {}, answer: OK }), { status: 503 });
  assert.equal(post.requests.length, 1);
  const bad = client([() => json(500, { error: 'x', code: 'INTERNAL_ERROR' })]);
  await assert.rejects(bad.http.request({ method: 'GET', path: '/x', answer: OK }), { status: 500 });
  assert.equal(bad.requests.length, 1);
  const off = client([busy(429)], 0);
  await assert.rejects(off.http.request({ method: 'GET', path: '/x', answer: OK }), { status: 429 });
  assert.equal(off.requests.length, 1);
  const refused = client([() => { throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }); }]);
  await assert.rejects(refused.http.request({ method: 'GET', path: '/x', answer: OK }), ConnectionError);
  assert.equal(refused.requests.length, 1);
});

test('Mags passes maxRetries on', async () => {
  let n = 0;
  const { fetch } = fakeFetch(() => (n++ < 1 ? busy(503, { 'retry-after': '0' })() : json(200, { status: 'ok', version: '1' })));
  const mags = new Mags({ apiToken: TOKEN, apiUrl: 'http://h', fetch, maxRetries: 1 });
  assert.equal((await mags.health()).status, 'ok');
  assert.equal(n, 2);
});

test('a misspelled run option is a ValidationError naming it and the closest valid one', async () => {
  const { fetch, requests } = fakeFetch(() => json(202, { request_id: 'r', status: 'accepted', message: 'ok' }));
  const mags = new Mags({ apiToken: TOKEN, apiUrl: 'http://h', fetch });
  const bad = { workspaceID: 'x' } as unknown as Parameters<Mags['run']>[1];
  await assert.rejects(mags.run('true', bad), (err: unknown) => {
    assert.ok(err instanceof ValidationError);
    assert.equal(err.code, 'VALIDATION_ERROR');
    assert.match(err.message, /"workspaceID"/);
    assert.equal(err.hint, 'Did you mean workspaceId?');
    return true;
  });
  const bad2 = { onOutpt: () => undefined } as unknown as Parameters<Mags['runAndWait']>[1];
  await assert.rejects(mags.runAndWait('true', bad2), { code: 'VALIDATION_ERROR', hint: 'Did you mean onOutput?' });
  const far = { zzzzzzzz: 1 } as unknown as Parameters<Mags['run']>[1];
  await assert.rejects(mags.run('true', far), (err: MagsError) => /Valid options: .*workspaceId/.test(err.hint ?? ''));
  assert.equal(requests.length, 0);
});

test('a bad URL is a ConnectionError naming it, not a TypeError', async () => {
  for (const apiUrl of ['not a url', 'ftp://x', 'http://']) {
    const { fetch, requests } = fakeFetch(() => json(200, {}));
    const mags = new Mags({ apiToken: TOKEN, apiUrl, fetch });
    await assert.rejects(mags.health(), (err: unknown) => {
      assert.ok(err instanceof ConnectionError, `${apiUrl}: ${String(err)}`);
      assert.equal(err.code, 'CONNECTION_FAILED');
      assert.ok(err.message.includes(JSON.stringify(apiUrl.replace(/\/+$/, ''))), err.message);
      return true;
    });
    assert.equal(requests.length, 0);
  }
});
