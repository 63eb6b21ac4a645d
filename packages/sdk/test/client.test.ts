/** Request shapes and client behaviour of the Node SDK, in-process with an injected fetch. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TERMINAL_STATUSES, JOB_STATUSES } from '@mags/shared';
import {
  AuthenticationError,
  ConnectionError,
  Mags,
  MagsError,
  NotFoundError,
  TimeoutError,
  isTerminalStatus,
  readConfigFile,
  removeSavedToken,
  resolveSettings,
  writeConfigFile,
  type LogEntry,
} from '../src/index.js';
import { fakeFetch, json, sse, type RecordedRequest } from './fake-fetch.js';

const URL_ = 'http://mags.test';
const TOKEN = 'mags_unit';
const line = (seq: number, message: string, stream: 'stdout' | 'stderr' | 'system' = 'stdout'): LogEntry => ({
  timestamp: '2026-11-26T05:00:00.000Z',
  level: stream === 'stderr' ? 'error' : 'info',
  message,
  stream,
  seq,
});
const job = (status: string, extra: Record<string, unknown> = {}) => ({ request_id: 'r1', status, exit_code: null, ...extra });

function withTempHome<T>(fn: (home: string) => T): T {
  const home = mkdtempSync(join(tmpdir(), 'mags-sdk-'));
  try {
    return fn(home);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

test('settings: option > MAGS_API_TOKEN > MAGS_TOKEN > config file; URL option > MAGS_API_URL > config > default', () => {
  withTempHome((home) => {
    const path = join(home, '.mags', 'config.json');
    mkdirSync(join(home, '.mags'));
    writeFileSync(path, JSON.stringify({ apiUrl: 'http://from-config:1/', apiToken: 'cfg' }));
    const env = { HOME: home } as NodeJS.ProcessEnv;
    assert.deepEqual(
      [resolveSettings({}, env).apiToken, resolveSettings({}, env).apiUrl, resolveSettings({}, env).tokenSource],
      ['cfg', 'http://from-config:1', 'config'],
    );
    const env2 = { ...env, MAGS_TOKEN: 't2', MAGS_API_URL: 'http://env:2' };
    assert.equal(resolveSettings({}, env2).apiToken, 't2');
    assert.equal(resolveSettings({}, env2).apiUrl, 'http://env:2');
    const env3 = { ...env2, MAGS_API_TOKEN: 't3' };
    assert.equal(resolveSettings({}, env3).apiToken, 't3');
    assert.equal(resolveSettings({ apiToken: 'opt', apiUrl: 'http://opt:3' }, env3).apiToken, 'opt');
    assert.equal(resolveSettings({ apiToken: 'opt', apiUrl: 'http://opt:3' }, env3).apiUrl, 'http://opt:3');
    assert.equal(resolveSettings({}, { HOME: join(home, 'none') }).apiUrl, 'http://127.0.0.1:8090');
    assert.equal(resolveSettings({}, { HOME: join(home, 'none') }).apiToken, undefined);
  });
});

test('config file: written with mode 0600, keeps unknown keys, logout removes only the token', () => {
  withTempHome((home) => {
    const path = join(home, '.mags', 'config.json');
    writeConfigFile({ api_url: 'http://a:1', api_token: 'tok' }, path);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), theme: 'dark' }));
    writeConfigFile({ api_token: 'tok2' }, path);
    assert.deepEqual(readConfigFile(path), { api_url: 'http://a:1', api_token: 'tok2', theme: 'dark' });
    assert.equal(removeSavedToken(path), true);
    assert.deepEqual(readConfigFile(path), { api_url: 'http://a:1', theme: 'dark' });
    assert.equal(removeSavedToken(path), false);
  });
});

test('no token: authenticated calls throw AuthenticationError without a request; health needs none', async () => {
  await withTempHome(async (home) => {
    const saved = { ...process.env };
    process.env.HOME = home;
    delete process.env.MAGS_API_TOKEN;
    delete process.env.MAGS_TOKEN;
    try {
      const { fetch, requests } = fakeFetch(() => json(200, { status: 'ok', version: '0.1.0' }));
      const mags = new Mags({ apiUrl: URL_, fetch });
      assert.equal(mags.hasToken, false);
      await assert.rejects(mags.status('r1'), (e: unknown) => {
        assert.ok(e instanceof AuthenticationError);
        assert.equal(e.message, 'API token required: set MAGS_API_TOKEN or run `mags login`');
        assert.equal(e.code, 'AUTH_REQUIRED');
        assert.match(e.hint ?? '', /admin-token/);
        return true;
      });
      assert.equal(requests.length, 0);
      assert.deepEqual(await mags.health(), { status: 'ok', version: '0.1.0' });
      assert.equal(requests[0]!.headers.authorization, undefined);
    } finally {
      process.env = saved;
    }
  });
});

test('runAndWait follows the SSE stream: live lines in order, returns at the end event', async () => {
  const seen: string[] = [];
  const { fetch, requests } = fakeFetch((req) => {
    if (req.method === 'POST') return json(202, { request_id: 'r1', status: 'accepted', message: 'ok' });
    if (req.path.endsWith('/logs')) {
      return sse([
        { event: 'log', data: line(1, 'hello') },
        { event: 'log', data: line(2, 'oops', 'stderr') },
        { event: 'end', data: { status: 'error', exit_code: 3 } },
      ], 5);
    }
    return json(200, job('error', { exit_code: 3, end_reason: 'exited', error_message: 'exited with code 3' }));
  });
  const mags = new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch });
  const r = await mags.runAndWait('echo hello; echo oops >&2; exit 3', {
    workspaceId: 'ws',
    environment: { A: '1' },
    onOutput: (l) => seen.push(`${l.stream}:${l.message}`),
  });
  assert.deepEqual(seen, ['stdout:hello', 'stderr:oops']);
  assert.equal(r.requestId, 'r1');
  assert.equal(r.status, 'error');
  assert.equal(r.exitCode, 3);
  assert.equal(r.errorMessage, 'exited with code 3');
  assert.equal(r.endReason, 'exited');
  assert.deepEqual(r.logs.map((l) => l.message), ['hello', 'oops']);
  assert.deepEqual(requests[0]!.body, { script: 'echo hello; echo oops >&2; exit 3', type: 'inline', workspace_id: 'ws', environment: { A: '1' } });
  const follow = requests[1]!;
  assert.equal(follow.path, '/api/v1/mags-jobs/r1/logs');
  assert.equal(follow.query.follow, '1');
  assert.equal(follow.headers.accept, 'text/event-stream');
  assert.equal(requests[2]!.path, '/api/v1/mags-jobs/r1/status');
  assert.equal(requests.length, 3);
});

test('runAndWait reconnects after the last seen line when the stream drops', async () => {
  let follows = 0;
  const { fetch, requests } = fakeFetch((req) => {
    if (req.method === 'POST') return json(202, { request_id: 'r1', status: 'accepted', message: 'ok' });
    if (req.path.endsWith('/logs')) {
      follows++;
      return follows === 1
        ? sse([{ event: 'log', data: line(1, 'a') }])
        : sse([{ event: 'log', data: line(1, 'a') }, { event: 'log', data: line(2, 'b') }, { event: 'end', data: { status: 'completed', exit_code: 0 } }]);
    }
    return json(200, job(follows === 1 ? 'running' : 'completed', { exit_code: follows === 1 ? null : 0 }));
  });
  const r = await new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch }).runAndWait('x');
  assert.deepEqual(r.logs.map((l) => l.message), ['a', 'b']);
  assert.equal(r.exitCode, 0);
  const followReqs = requests.filter((q) => q.query.follow === '1');
  assert.equal(followReqs[1]!.query.after, '1');
});

test('runAndWait: a stream that closes before any line, after the job ended, still yields every line', async () => {
  const { fetch, requests } = fakeFetch((req) => {
    if (req.method === 'POST') return json(202, { request_id: 'r1', status: 'accepted', message: 'ok' });
    if (req.path.endsWith('/logs')) return req.query.follow ? sse([]) : json(200, { logs: [line(1, 'only')] });
    return json(200, job('completed', { exit_code: 0 }));
  });
  const r = await new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch }).runAndWait('x');
  assert.deepEqual(r.logs.map((l) => l.message), ['only']);
  const drain = requests.find((q) => q.path.endsWith('/logs') && !q.query.follow)!;
  assert.deepEqual(drain.query, {});
});

test('a stalled stream (no data, no keep-alive) is reopened after the last seen line', async () => {
  const { followJob } = await import('../src/follow.js');
  const { HttpClient } = await import('../src/http.js');
  let follows = 0;
  const enc = new TextEncoder();
  const { fetch, requests } = fakeFetch((req) => {
    if (req.path.endsWith('/status')) return json(200, job('running'));
    follows++;
    if (follows === 1) {
      // One line, then silence with the connection left open.
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(enc.encode(`event: log\ndata: ${JSON.stringify(line(1, 'first'))}\n\n`));
        },
      });
      return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
    }
    return sse([{ event: 'log', data: line(2, 'second') }, { event: 'end', data: { status: 'completed', exit_code: 0 } }]);
  });
  const http = new HttpClient({ apiUrl: URL_, apiToken: TOKEN, timeoutMs: 5000, fetch, userAgent: 't' });
  const seen: string[] = [];
  const end = await followJob(http, 'r1', { stallMs: 100, onLine: (l) => seen.push(l.message) });
  assert.deepEqual(seen, ['first', 'second']);
  assert.equal(end.status, 'completed');
  assert.equal(requests.filter((r) => r.query.follow === '1')[1]!.query.after, '1');
});

test('urlAliasList: GET /api/v2/mags-url-aliases', async () => {
  const { fetch, requests } = fakeFetch(() => json(200, { aliases: [{ subdomain: 'app', url: 'http://app.apps.localhost', workspace_id: 'ws' }] }));
  const r = await new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch }).urlAliasList();
  assert.equal(r.aliases?.[0]?.subdomain, 'app');
  assert.equal(requests[0]!.path, '/api/v2/mags-url-aliases');
});

test('urlAliasCreate sends port and auth (or Mags\' domain string); url() sends auth only when asked', async () => {
  const { fetch, requests } = fakeFetch((req: RecordedRequest) =>
    req.path.endsWith('/access')
      ? json(200, { success: true, url: 'http://abcdefabcdef.apps.localhost:8091', subdomain: 'abcdefabcdef', port: 8080, auth: 'token', login_url: 'http://x/__mags/login?token=t' })
      : json(200, { success: true, subdomain: 'shop', url: 'http://shop.apps.localhost:8091', workspace_id: 'ws', domain: 'apps.localhost', port: 3000, auth: 'token', created_at: 'now' }),
  );
  const mags = new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch });
  await mags.urlAliasCreate('shop', 'ws', { port: 3000, auth: 'token' });
  await mags.urlAliasCreate('shop', 'ws', 'apps.localhost');
  const a = await mags.url('web', 8080, { auth: 'token' });
  await mags.url('web');
  assert.deepEqual(requests.map((r) => r.body), [
    { subdomain: 'shop', workspace_id: 'ws', port: 3000, auth: 'token' },
    { subdomain: 'shop', workspace_id: 'ws', domain: 'apps.localhost' },
    { port: 8080, auth: 'token' },
    { port: 8080 },
  ]);
  assert.equal(a.login_url, 'http://x/__mags/login?token=t');
});

test('runAndWait falls back to polling when the server has no stream', async () => {
  let polls = 0;
  const { fetch } = fakeFetch((req: RecordedRequest) => {
    if (req.method === 'POST') return json(202, { request_id: 'r1', status: 'accepted', message: 'ok' });
    if (req.path.endsWith('/logs')) {
      // A server without the stream ignores follow=1 and answers JSON (no seq, whole log each time).
      const all = [{ level: 'info', message: 'one', timestamp: 't' }, { level: 'info', message: 'two', timestamp: 't' }];
      return json(200, { logs: all.slice(0, Math.min(polls, 2)) });
    }
    polls++;
    return json(200, job(polls >= 3 ? 'completed' : 'running', { exit_code: polls >= 3 ? 0 : null }));
  });
  const seen: string[] = [];
  const mags = new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch });
  const r = await mags.runAndWait('x', { onOutput: (l) => seen.push(l.message) });
  assert.equal(r.status, 'completed');
  assert.deepEqual(seen, ['one', 'two']);
});

test('runAndWait timeoutMs: TimeoutError naming the job and how to stop it', async () => {
  const { fetch } = fakeFetch((req) => {
    if (req.method === 'POST') return json(202, { request_id: 'r9', status: 'accepted', message: 'ok' });
    return sse([{ event: 'log', data: line(1, 'slow') }], 2000);
  });
  const mags = new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch });
  await assert.rejects(mags.runAndWait('sleep 100', { timeoutMs: 100 }), (e: unknown) => {
    assert.ok(e instanceof TimeoutError);
    assert.match(e.message, /r9/);
    assert.match(e.hint ?? '', /mags stop r9/);
    return true;
  });
});

test('per-call timeoutMs and the client timeout give TimeoutError; a caller signal aborts with its reason', async () => {
  const hang = (_: RecordedRequest) => new Promise<Response>(() => {});
  const { fetch } = fakeFetch(hang);
  const hangingFetch: typeof fetch = (input, init) =>
    new Promise((_resolve, reject) => {
      init?.signal?.addEventListener('abort', () => reject(init.signal!.reason));
      void fetch(input, init);
    });
  // AbortSignal.timeout() does not keep the event loop alive (a real request's socket does).
  const keepAlive = setInterval(() => {}, 1000);
  try {
    const mags = new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch: hangingFetch, timeout: 50 });
    await assert.rejects(mags.status('r1'), TimeoutError);
    await assert.rejects(mags.status('r1', { timeoutMs: 20 }), (e: unknown) => e instanceof TimeoutError && /20 ms/.test(e.message));
    const ac = new AbortController();
    const p = new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch: hangingFetch, timeout: 0 }).status('r1', { signal: ac.signal });
    ac.abort(new Error('caller gave up'));
    await assert.rejects(p, /caller gave up/);
  } finally {
    clearInterval(keepAlive);
  }
});

test('unreachable server: ConnectionError naming the URL and MAGS_API_URL', async () => {
  const mags = new Mags({ apiToken: TOKEN, apiUrl: 'http://127.0.0.1:9/' , fetch: async () => {
    throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
  } });
  await assert.rejects(mags.list(), (e: unknown) => {
    assert.ok(e instanceof ConnectionError);
    assert.equal(e.code, 'CONNECTION_FAILED');
    assert.match(e.message, /http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\)/);
    assert.match(e.hint ?? '', /MAGS_API_URL/);
    return true;
  });
});

test('answers that do not match the wire schema fail with INVALID_RESPONSE naming the field', async () => {
  const { fetch } = fakeFetch(() => json(200, { jobs: 'nope' }));
  await assert.rejects(new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch }).list(), (e: unknown) => {
    assert.ok(e instanceof MagsError);
    assert.equal(e.code, 'INVALID_RESPONSE');
    assert.match(e.message, /field jobs/);
    return true;
  });
  const nested = fakeFetch(() => json(200, { jobs: [{ request_id: 'r1', status: 'completed' }, { request_id: 'r2' }] }));
  await assert.rejects(new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch: nested.fetch }).list(), /field jobs\.1\.status: expected string, got undefined/);
  // Fields the SDK does not read pass through as sent, including ones this client does not know.
  const extra = fakeFetch(() => json(200, { jobs: [{ request_id: 'r1', status: 'completed', end_reason: 'exit' }], total: 'n/a' }));
  const list = await new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch: extra.fetch }).list();
  assert.deepEqual(list, { jobs: [{ request_id: 'r1', status: 'completed', end_reason: 'exit' }], total: 'n/a' });
});

test('streamLogs yields lines until the end event; after is sent', async () => {
  const { fetch, requests } = fakeFetch(() =>
    sse([{ event: 'log', data: line(5, 'x') }, { event: 'log', data: line(6, 'y') }, { event: 'end', data: { status: 'completed', exit_code: 0 } }]),
  );
  const got: string[] = [];
  for await (const l of new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch }).streamLogs('job name', { after: 4 })) got.push(l.message);
  assert.deepEqual(got, ['x', 'y']);
  assert.equal(requests[0]!.path, '/api/v1/mags-jobs/job%20name/logs');
  assert.deepEqual(requests[0]!.query, { follow: '1', after: '4' });
});

test('streamLogs: breaking out of the loop closes the stream', async () => {
  const { fetch } = fakeFetch(() => sse([{ event: 'log', data: line(1, 'a') }, { event: 'log', data: line(2, 'b') }], 50));
  const mags = new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch });
  for await (const l of mags.streamLogs('r1')) {
    assert.equal(l.message, 'a');
    break;
  }
});

test('tokens: create, list, revoke', async () => {
  const { fetch, requests } = fakeFetch((req) => {
    if (req.method === 'POST') return json(201, { id: 't1', name: 'ci', token: 'mags_x', created_at: 'now' });
    if (req.method === 'GET') return json(200, { tokens: [{ id: 't1', name: 'ci', created_at: 'now', last_used_at: null }] });
    return json(200, { success: true });
  });
  const mags = new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch });
  assert.equal((await mags.tokens.create('ci')).token, 'mags_x');
  assert.equal((await mags.tokens.list()).tokens[0]!.id, 't1');
  assert.deepEqual(await mags.tokens.revoke('t1'), { success: true });
  assert.deepEqual(
    requests.map((r) => `${r.method} ${r.path} ${JSON.stringify(r.body ?? null)}`),
    ['POST /api/v1/tokens {"name":"ci"}', 'GET /api/v1/tokens null', 'DELETE /api/v1/tokens/t1 null'],
  );
});

test('users: create (admin flag only when given) and list', async () => {
  const { fetch, requests } = fakeFetch((req) =>
    req.method === 'POST'
      ? json(201, { id: 'u1', name: 'alice', admin: false, token: 'mags_a' })
      : json(200, { users: [{ id: 'u1', name: 'alice', admin: false, created_at: 'now' }] }),
  );
  const mags = new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch });
  assert.equal((await mags.users.create('alice')).token, 'mags_a');
  await mags.users.create('ops', { admin: true });
  assert.equal((await mags.users.list()).users[0]!.name, 'alice');
  assert.deepEqual(
    requests.map((r) => `${r.method} ${r.path} ${JSON.stringify(r.body ?? null)}`),
    ['POST /api/v1/users {"name":"alice"}', 'POST /api/v1/users {"name":"ops","admin":true}', 'GET /api/v1/users null'],
  );
});

test('findJob: falls back to the job list for names; null when nothing runs', async () => {
  const { fetch, requests } = fakeFetch((req) => {
    if (req.path.endsWith('/status')) return json(404, { error: 'No job', code: 'JOB_NOT_FOUND' });
    return json(200, { jobs: [job('completed', { name: 'web' }), { ...job('sleeping', { name: 'web' }), request_id: 'r2' }], page: 1, page_size: 100, total: 2 });
  });
  const mags = new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch });
  assert.equal((await mags.findJob('web'))?.request_id, 'r2');
  assert.equal(await mags.findJob('other'), null);
  assert.deepEqual(requests[1]!.query, { page: '1', page_size: '100' });
});

test('new: submits a persistent job named after the sandbox and waits until it runs', async () => {
  let polls = 0;
  const { fetch, requests } = fakeFetch((req) => {
    if (req.method === 'POST') return json(202, { request_id: 'r1', status: 'accepted', message: 'ok' });
    polls++;
    return json(200, job(polls < 2 ? 'pending' : 'running', { name: 'dev', workspace_id: 'dev' }));
  });
  const r = await new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch }).new('dev', { persistent: true, pollInterval: 50 });
  // The submit answer's fields (Mags callers read request_id), then the sandbox's state.
  assert.deepEqual(r, { request_id: 'r1', message: 'ok', requestId: 'r1', name: 'dev', workspaceId: 'dev', status: 'running' });
  assert.deepEqual(requests[0]!.body, { script: 'true', type: 'inline', name: 'dev', persistent: true, workspace_id: 'dev' });
});

test('errors: NotFoundError keeps the server hint', async () => {
  const { fetch } = fakeFetch(() => json(404, { error: 'No job found for x', code: 'JOB_NOT_FOUND', hint: 'Run `mags list`.' }));
  await assert.rejects(new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch }).stop('x'), (e: unknown) =>
    e instanceof NotFoundError && e.hint === 'Run `mags list`.' && e.status === 404,
  );
});

test('terminal statuses agree with @mags/shared', () => {
  for (const s of JOB_STATUSES) assert.equal(isTerminalStatus(s), TERMINAL_STATUSES.includes(s), s);
});

test('exec: timeout in ms goes as whole timeout_seconds, the HTTP call waits 30 s longer; answer camelCased', async () => {
  const { fetch, requests } = fakeFetch(() => json(200, { exit_code: 124, output: 'o', stderr: 'e', truncated: false, timed_out: true, duration_ms: 1000 }));
  const r = await new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch }).exec('dev', 'sleep 9', { timeout: 1500, cwd: '/tmp', env: { A: 'b' }, stdin: 'x' });
  assert.deepEqual(r, { exitCode: 124, output: 'o', stderr: 'e', timedOut: true, truncated: false });
  assert.equal(requests[0]!.path, '/api/v1/mags-jobs/dev/exec');
  assert.deepEqual(requests[0]!.body, { command: 'sleep 9', timeout_seconds: 2, env: { A: 'b' }, cwd: '/tmp', stdin: 'x' });
});

test('execStream waits for a promise onOutput returns before it reads on (a slow consumer holds the stream back)', async () => {
  const lines = ['{"type":"stdout","data":"a"}\n', '{"type":"stdout","data":"b"}\n', '{"type":"stderr","data":"c"}\n', '{"type":"exit","exit_code":3,"timed_out":false,"duration_ms":1}\n'];
  let pulls = 0;
  const body = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        const l = lines[pulls++];
        if (l === undefined) c.close();
        else c.enqueue(new TextEncoder().encode(l));
      },
    },
    { highWaterMark: 0 },
  );
  const fetch = async () => new Response(body, { status: 200, headers: { 'content-type': 'application/x-ndjson' } });
  const got: string[] = [];
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const end = new Mags({ apiToken: TOKEN, apiUrl: URL_, fetch }).execStream('dev', 'x', {
    onOutput: (stream, text) => {
      got.push(`${stream}:${text}`);
      return got.length === 1 ? held : undefined;
    },
  });
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, ['stdout:a']);
  assert.equal(pulls, 1, 'nothing more is read while the consumer is busy');
  release();
  assert.deepEqual(await end, { exitCode: 3, timedOut: false });
  assert.deepEqual(got, ['stdout:a', 'stdout:b', 'stderr:c']);
});
