import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { createHarness, type Harness } from './helpers/harness.js';
import { POSTGRES_SKIP, startPostgres, type TestPostgres } from './helpers/postgres.js';

/**
 * Dashboard accounts in-process on SQLite and PostgreSQL: password and token sign-in, cookie flags,
 * CSRF checks on cookie-authenticated writes, the sign-in rate limit, invites, logout, and
 * disabling a user (its sessions and tokens stop at once).
 */
for (const backend of ['SQLite', 'PostgreSQL'] as const)
describe(`dashboard sessions (in-process, ${backend})`, { skip: backend === 'PostgreSQL' && POSTGRES_SKIP }, () => {
  let h: Harness;
  let pg: TestPostgres | undefined;
  let admin: Record<string, string>;
  before(async () => {
    if (backend === 'PostgreSQL') pg = await startPostgres();
    h = await createHarness({ databaseUrl: pg?.url, trustProxy: true });
    admin = { authorization: `Bearer ${h.adminToken}` };
  });
  after(async () => {
    await h?.close();
    await pg?.stop();
  });

  const inject = (method: string, url: string, opts: { headers?: Record<string, string>; payload?: unknown } = {}) =>
    h.app.inject({ method: method as 'GET', url, headers: opts.headers, payload: opts.payload as object });
  const cookieOf = (res: LightMyRequestResponse) => {
    const set = String(res.headers['set-cookie'] ?? '');
    const m = /mags_session=([^;]*)/.exec(set);
    assert.ok(m, `no session cookie in ${set}`);
    return { cookie: `mags_session=${m[1]}`, set };
  };
  /** A user with a password; returns its id and token. */
  const userWithPassword = async (name: string, password: string) => {
    const res = await inject('POST', '/api/v1/users', { headers: admin, payload: { name } });
    assert.equal(res.statusCode, 201, res.body);
    const { id, token } = res.json() as { id: string; token: string };
    const set = await inject('PUT', '/api/v1/me/password', { headers: { authorization: `Bearer ${token}` }, payload: { password } });
    assert.equal(set.statusCode, 200, set.body);
    return { id, token };
  };
  const login = (body: Record<string, unknown>, headers: Record<string, string> = {}) => inject('POST', '/api/v1/auth/login', { headers, payload: body });

  it('signs in with a password: HttpOnly, SameSite=Lax, Path=/ cookie; Secure only over TLS', async () => {
    await userWithPassword('alice', 'correct horse battery');
    const res = await login({ username: 'alice', password: 'correct horse battery' });
    assert.equal(res.statusCode, 200, res.body);
    const { set } = cookieOf(res);
    assert.match(set, /HttpOnly/);
    assert.match(set, /SameSite=Lax/);
    assert.match(set, /Path=\//);
    assert.doesNotMatch(set, /Secure/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const body = res.json() as { user: { name: string }; csrf_token: string };
    assert.equal(body.user.name, 'alice');
    assert.ok(body.csrf_token.length >= 20);
    // Behind a trusted TLS proxy the cookie is Secure.
    const tls = await login({ username: 'alice', password: 'correct horse battery' }, { 'x-forwarded-proto': 'https' });
    assert.match(cookieOf(tls).set, /; Secure/);
  });

  it('the session cookie authenticates reads; writes need the CSRF token and a same-site origin', async () => {
    const res = await login({ username: 'alice', password: 'correct horse battery' });
    const { cookie } = cookieOf(res);
    const csrf = (res.json() as { csrf_token: string }).csrf_token;
    const me = await inject('GET', '/api/v1/me', { headers: { cookie } });
    assert.equal(me.statusCode, 200, me.body);
    assert.equal((me.json() as { name: string }).name, 'alice');
    const session = await inject('GET', '/api/v1/auth/session', { headers: { cookie } });
    assert.equal((session.json() as { csrf_token: string }).csrf_token, csrf);

    const noHeader = await inject('POST', '/api/v1/tokens', { headers: { cookie }, payload: { name: 'x' } });
    assert.equal(noHeader.statusCode, 403);
    assert.equal((noHeader.json() as { code: string }).code, 'CSRF_REJECTED');
    const wrong = await inject('POST', '/api/v1/tokens', { headers: { cookie, 'x-csrf-token': 'nope' }, payload: { name: 'x' } });
    assert.equal((wrong.json() as { code: string }).code, 'CSRF_REJECTED');
    const crossOrigin = await inject('POST', '/api/v1/tokens', { headers: { cookie, 'x-csrf-token': csrf, origin: 'https://evil.example' }, payload: { name: 'x' } });
    assert.equal((crossOrigin.json() as { code: string }).code, 'CSRF_REJECTED');
    const crossSite = await inject('POST', '/api/v1/tokens', { headers: { cookie, 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site' }, payload: { name: 'x' } });
    assert.equal((crossSite.json() as { code: string }).code, 'CSRF_REJECTED');
    const tokens = await inject('GET', '/api/v1/tokens', { headers: { cookie } });
    assert.equal((tokens.json() as { tokens: Array<{ name: string }> }).tokens.filter((t) => t.name === 'x').length, 0, 'no refused write took effect');

    const ok = await inject('POST', '/api/v1/tokens', { headers: { cookie, 'x-csrf-token': csrf, 'sec-fetch-site': 'same-origin', origin: 'http://localhost:80' }, payload: { name: 'x' } });
    assert.equal(ok.statusCode, 201, ok.body);
    // A Bearer token needs no CSRF token (it is not sent by browsers on their own).
    const bearer = await inject('POST', '/api/v1/tokens', { headers: admin, payload: { name: 'y' } });
    assert.equal(bearer.statusCode, 201);
  });

  it('a cross-site sign-in form is refused (login CSRF)', async () => {
    const res = await login({ username: 'alice', password: 'correct horse battery' }, { 'sec-fetch-site': 'cross-site' });
    assert.equal(res.statusCode, 403);
    assert.equal(res.headers['set-cookie'], undefined);
  });

  it('signs in with an API token; wrong credentials answer 401 INVALID_CREDENTIALS without saying which part was wrong', async () => {
    const ok = await login({ token: h.adminToken });
    assert.equal(ok.statusCode, 200, ok.body);
    for (const body of [{ username: 'alice', password: 'wrong password' }, { username: 'nobody', password: 'whatever1' }, { token: 'mags_nope' }, { email: 'x@y.z', password: 'whatever1' }]) {
      const res = await login(body, { 'x-forwarded-for': '10.9.9.9' });
      assert.equal(res.statusCode, 401, JSON.stringify(body));
      assert.equal((res.json() as { code: string }).code, 'INVALID_CREDENTIALS');
    }
    const bad = await login({ username: 'alice' });
    assert.equal(bad.statusCode, 400);
    const hostile = await login({ username: ['a'], password: { $ne: 1 } } as never);
    assert.equal(hostile.statusCode, 400);
  });

  it('slows brute force: after 5 failures the account answers 429 RATE_LIMITED, even with the right password', async () => {
    await userWithPassword('carol', 'carols password');
    for (let i = 0; i < 5; i++) {
      const res = await login({ username: 'carol', password: `guess ${i}` }, { 'x-forwarded-for': `10.0.0.${i + 1}` });
      assert.equal(res.statusCode, 401);
    }
    const limited = await login({ username: 'carol', password: 'carols password' }, { 'x-forwarded-for': '10.0.1.1' });
    assert.equal(limited.statusCode, 429, limited.body);
    assert.equal((limited.json() as { code: string }).code, 'RATE_LIMITED');
    // Per address too: one address trying many accounts is stopped after 20 failures.
    for (let i = 0; i < 20; i++) await login({ username: `user${i}`, password: 'whatever1' }, { 'x-forwarded-for': '10.7.7.7' });
    const addr = await login({ username: 'alice', password: 'correct horse battery' }, { 'x-forwarded-for': '10.7.7.7' });
    assert.equal(addr.statusCode, 429);
    const other = await login({ username: 'alice', password: 'correct horse battery' }, { 'x-forwarded-for': '10.7.7.8' });
    assert.equal(other.statusCode, 200);
  });

  it('logout revokes the session at once', async () => {
    const res = await login({ username: 'alice', password: 'correct horse battery' });
    const { cookie } = cookieOf(res);
    const csrf = (res.json() as { csrf_token: string }).csrf_token;
    const out = await inject('POST', '/api/v1/auth/logout', { headers: { cookie, 'x-csrf-token': csrf } });
    assert.equal(out.statusCode, 200);
    assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
    const after = await inject('GET', '/api/v1/me', { headers: { cookie } });
    assert.equal(after.statusCode, 401);
  });

  it('an invite sets the password once; the link then answers INVITE_NOT_FOUND', async () => {
    const created = await inject('POST', '/api/v1/users', { headers: admin, payload: { name: 'dave' } });
    const { id } = created.json() as { id: string };
    const forbidden = await inject('POST', `/api/v1/users/${id}/invite`, { headers: { authorization: `Bearer ${(created.json() as { token: string }).token}` } });
    assert.equal(forbidden.statusCode, 403);
    const inv = await inject('POST', `/api/v1/users/${id}/invite`, { headers: admin });
    assert.equal(inv.statusCode, 201, inv.body);
    const { token, url } = inv.json() as { token: string; url: string };
    assert.match(url, new RegExp(`/invite/${token}$`));
    const short = await inject('POST', '/api/v1/auth/accept-invite', { payload: { token, password: 'short' } });
    assert.equal(short.statusCode, 400);
    const ok = await inject('POST', '/api/v1/auth/accept-invite', { payload: { token, password: 'daves new password' } });
    assert.equal(ok.statusCode, 200, ok.body);
    cookieOf(ok);
    const again = await inject('POST', '/api/v1/auth/accept-invite', { payload: { token, password: 'another password' } });
    assert.equal(again.statusCode, 404);
    assert.equal((again.json() as { code: string }).code, 'INVITE_NOT_FOUND');
    assert.equal((await login({ username: 'dave', password: 'daves new password' })).statusCode, 200);
    // Email sign-in, case-insensitive.
    const patch = await inject('PATCH', `/api/v1/users/${id}`, { headers: admin, payload: { email: 'Dave@Example.com' } });
    assert.equal(patch.statusCode, 200, patch.body);
    assert.equal((await login({ email: 'dave@example.COM'.toLowerCase(), password: 'daves new password' })).statusCode, 200);
  });

  it('a disabled user: its sessions and tokens stop working at once; enabling restores the tokens', async () => {
    const { id, token } = await userWithPassword('erin', 'erins password');
    const res = await login({ username: 'erin', password: 'erins password' });
    const { cookie } = cookieOf(res);
    assert.equal((await inject('GET', '/api/v1/me', { headers: { cookie } })).statusCode, 200);
    const nonAdmin = await inject('PATCH', `/api/v1/users/${id}`, { headers: { authorization: `Bearer ${token}` }, payload: { disabled: true } });
    assert.equal(nonAdmin.statusCode, 403);
    const dis = await inject('PATCH', `/api/v1/users/${id}`, { headers: admin, payload: { disabled: true } });
    assert.equal(dis.statusCode, 200, dis.body);
    assert.ok((dis.json() as { disabled_at: string | null }).disabled_at);
    assert.equal((await inject('GET', '/api/v1/me', { headers: { cookie } })).statusCode, 401);
    const byToken = await inject('GET', '/api/v1/me', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(byToken.statusCode, 401);
    assert.equal((await login({ username: 'erin', password: 'erins password' })).statusCode, 401);
    assert.equal((await login({ token })).statusCode, 401);
    const listed = await inject('GET', '/api/v1/users', { headers: admin });
    assert.ok((listed.json() as { users: Array<{ name: string; disabled_at: string | null }> }).users.find((u) => u.name === 'erin')?.disabled_at);
    const en = await inject('PATCH', `/api/v1/users/${id}`, { headers: admin, payload: { disabled: false } });
    assert.equal(en.statusCode, 200);
    assert.equal((await inject('GET', '/api/v1/me', { headers: { authorization: `Bearer ${token}` } })).statusCode, 200);
    assert.equal((await inject('GET', '/api/v1/me', { headers: { cookie } })).statusCode, 401, 'sessions revoked by disabling stay revoked');
    const self = await inject('PATCH', `/api/v1/users/${(await inject('GET', '/api/v1/me', { headers: admin })).json().id}`, { headers: admin, payload: { disabled: true } });
    assert.equal(self.statusCode, 422);
  });

  it("another user's job, workspace and token answer 404", async () => {
    const bob = await h.makeUser('bob-other');
    const sub = await inject('POST', '/api/v1/mags-jobs', { headers: { authorization: `Bearer ${bob}` }, payload: { script: 'echo hi', type: 'inline', workspace_id: 'bobs-ws' } });
    assert.equal(sub.statusCode, 202, sub.body);
    const jobId = (sub.json() as { request_id: string }).request_id;
    await h.waitDone(bob, jobId);
    const bobTokens = await inject('GET', '/api/v1/tokens', { headers: { authorization: `Bearer ${bob}` } });
    const bobTokenId = (bobTokens.json() as { tokens: Array<{ id: string }> }).tokens[0]!.id;
    const res = await login({ username: 'alice', password: 'correct horse battery' });
    const { cookie } = cookieOf(res);
    const csrf = (res.json() as { csrf_token: string }).csrf_token;
    for (const url of [`/api/v1/mags-jobs/${jobId}/details`, `/api/v1/mags-jobs/${jobId}/status`, `/api/v1/mags-jobs/${jobId}/logs`, '/api/v1/workspaces/bobs-ws/history']) {
      const r = await inject('GET', url, { headers: { cookie } });
      assert.equal(r.statusCode, 404, `${url}: ${r.body}`);
    }
    const del = await inject('DELETE', `/api/v1/tokens/${bobTokenId}`, { headers: { cookie, 'x-csrf-token': csrf } });
    assert.equal(del.statusCode, 404);
    const delWs = await inject('DELETE', '/api/v1/workspaces/bobs-ws', { headers: { cookie, 'x-csrf-token': csrf } });
    assert.equal(delWs.statusCode, 404);
  });

  it('lists jobs filtered by status on the server, and answers a job\'s details (script, limits, env names only)', async () => {
    const auth = { authorization: `Bearer ${h.adminToken}` };
    const sub = await inject('POST', '/api/v2/mags-jobs', { headers: auth, payload: { script: 'echo filtered', type: 'inline', vcpus: 1, memory_mb: 256, environment: { SECRET: 'hunter2' } } });
    const id = (sub.json() as { request_id: string }).request_id;
    await h.waitDone(h.adminToken, id);
    const done = await inject('GET', '/api/v1/mags-jobs?status=completed&page_size=100', { headers: auth });
    const list = done.json() as { jobs: Array<{ status: string; request_id: string }>; total: number };
    assert.ok(list.jobs.length > 0 && list.jobs.every((j) => j.status === 'completed'));
    assert.ok(list.jobs.some((j) => j.request_id === id));
    const running = await inject('GET', '/api/v1/mags-jobs?status=running', { headers: auth });
    assert.equal((running.json() as { total: number }).total, 0);
    assert.equal((await inject('GET', '/api/v1/mags-jobs?status=bogus', { headers: auth })).statusCode, 400);
    const details = await inject('GET', `/api/v1/mags-jobs/${id}/details`, { headers: auth });
    const d = details.json() as Record<string, unknown>;
    assert.equal(d.script, 'echo filtered');
    assert.equal(d.memory_mb, 256);
    assert.deepEqual(d.environment_keys, ['SECRET']);
    assert.doesNotMatch(details.body, /hunter2/);
  });
});
