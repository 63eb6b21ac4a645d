import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, screenshots, seriousA11yViolations } from './helpers/browser.js';
import { client, type Client } from './helpers/http.js';
import { spawnServer, type SpawnedServer } from './helpers/spawn-server.js';

/**
 * The dashboard in Debian's Chromium against a real server (real sandboxes, SQLite): invite and
 * sign in, tokens, a job whose output streams live, stop, usage, sign out; user data shown as text
 * only; a cross-site form does nothing; another user's job answers "not found"; a disabled user is
 * signed out at once; axe-core finds no serious violation on any page; screenshots at 1280 and 390 px.
 */
describe('dashboard in a browser (real server)', () => {
  let server: SpawnedServer;
  let browser: Browser;
  let admin: Client;
  let shots: string;
  let alice: { id: string; token: string };
  const PASSWORD = 'alices long password';

  before(async () => {
    server = await spawnServer();
    admin = client(server.url, server.token);
    browser = await launchChromium();
    shots = await mkdtemp(join(tmpdir(), 'mags-shots-'));
    const created = await admin.req('POST', '/api/v1/users', { name: 'alice' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    alice = created.body as { id: string; token: string };
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    if (shots) await rm(shots, { recursive: true, force: true });
  });

  /** A page that fails the test on any alert() (an injected script running) and auto-accepts confirm(). */
  async function newPage(ctx: BrowserContext): Promise<{ page: Page; alerts: string[] }> {
    const page = await ctx.newPage();
    const alerts: string[] = [];
    page.on('dialog', (d) => {
      if (d.type() === 'confirm') return void d.accept();
      alerts.push(`${d.type()}: ${d.message()}`);
      return void d.dismiss();
    });
    return { page, alerts };
  }

  async function assertAccessible(page: Page, what: string): Promise<void> {
    const v = await seriousA11yViolations(page);
    assert.deepEqual(v, [], `${what}: serious accessibility violations: ${JSON.stringify(v, null, 1)}`);
  }

  async function signIn(page: Page, username: string, password: string): Promise<void> {
    await page.goto(`${server.url}/login`);
    await page.getByLabel('Username or email').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/jobs');
  }

  it('invite, sign in, tokens, a job with live output, stop, usage, sign out', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, bypassCSP: true }) // axe-core is injected inline;
    try {
      const { page, alerts } = await newPage(ctx);
      // The admin invites alice; the link sets her password and signs her in.
      const inv = await admin.req('POST', `/api/v1/users/${alice.id}/invite`);
      assert.equal(inv.status, 201);
      await page.goto(inv.body.url as string);
      await assertAccessible(page, 'invite');
      await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
      await page.getByLabel('Password again').fill(PASSWORD);
      await page.getByRole('button', { name: 'Set password and sign in' }).click();
      await page.waitForURL('**/jobs');
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL('**/login');
      await assertAccessible(page, 'login');
      await screenshots(page, shots, 'login');

      // Cookie flags as the browser stored them.
      await signIn(page, 'alice', PASSWORD);
      const cookie = (await ctx.cookies()).find((c) => c.name === 'mags_session');
      assert.ok(cookie, 'session cookie set');
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, 'Lax');
      assert.equal(cookie.path, '/');
      assert.equal(cookie.secure, false, 'plain http: no Secure flag');
      assert.equal(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie.includes('mags_session')), false, 'scripts cannot read the session cookie');

      // Tokens: create (shown once), it works, revoke, it stops working.
      await page.getByRole('link', { name: 'Tokens' }).click();
      // Wait for the page itself: the Jobs page's Run box has a "Name (optional)" field that a fill
      // could land in while the route is still changing.
      await page.getByRole('heading', { level: 1, name: 'API tokens' }).waitFor();
      await page.getByLabel('Name', { exact: true }).fill('laptop');
      await page.getByRole('button', { name: 'Create token' }).click();
      const token = (await page.getByTestId('new-token').textContent())!.trim();
      assert.match(token, /^mags_[0-9A-Za-z]{40}$/);
      assert.equal((await client(server.url, token).req('GET', '/api/v1/me')).status, 200);
      await assertAccessible(page, 'tokens');
      await screenshots(page, shots, 'tokens');
      await page.getByRole('button', { name: 'Done' }).click();
      // The list refetches after the create; on a loaded host (axe and two full-page screenshots just
      // ran) that can take long: wait for the row, and say what the page showed if it never came.
      const revoke = page.getByRole('button', { name: 'Revoke token laptop' });
      await revoke.waitFor({ timeout: 60_000 }).catch(async (err: Error) => {
        throw new Error(`${err.message}\nthe page showed: ${await page.locator('body').innerText().catch((e: Error) => e.message)}`);
      });
      await revoke.click();
      await revoke.waitFor({ state: 'detached' });
      assert.equal((await client(server.url, token).req('GET', '/api/v1/me')).status, 401);

      // Run a job from the Run box; its output streams while it runs; stop it.
      await page.getByRole('link', { name: 'Jobs' }).click();
      await page.getByLabel(/^Script/).fill('echo started; for i in $(seq 1 120); do echo tick-$i; sleep 0.5; done');
      await page.getByLabel('Name (optional)').fill('ticker');
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
      const logs = page.getByTestId('logs');
      await logs.getByText('tick-2', { exact: true }).waitFor({ timeout: 60_000 });
      const seenAt2 = (await logs.textContent()) ?? '';
      assert.doesNotMatch(seenAt2, /tick-20\n/, 'the page shows output while the job runs, not after it');
      await logs.getByText('tick-6', { exact: true }).waitFor({ timeout: 30_000 });
      await page.getByText('Live: new output').waitFor();
      await assertAccessible(page, 'job');
      await screenshots(page, shots, 'job');
      await page.getByRole('button', { name: 'Stop' }).click();
      await page.getByText('(cancelled)').waitFor({ timeout: 30_000 });
      await page.getByText('The job has ended').waitFor({ timeout: 30_000 });
      const id = page.url().split('/').pop()!;
      const st = await client(server.url, alice.token).req('GET', `/api/v1/mags-jobs/${id}/status`);
      assert.equal(st.body.end_reason, 'cancelled');

      await page.getByRole('link', { name: 'Jobs' }).click();
      await page.getByRole('link', { name: 'ticker' }).waitFor();
      await assertAccessible(page, 'jobs');
      await screenshots(page, shots, 'jobs');

      for (const [link, name] of [['Workspaces', 'workspaces'], ['URLs', 'urls']] as const) {
        await page.getByRole('link', { name: link }).click();
        await page.getByRole('heading', { level: 1, name: link }).waitFor();
        await page.waitForLoadState('networkidle');
        await assertAccessible(page, name);
        await screenshots(page, shots, name);
      }

      // Usage: the chart when the server meters usage, else an honest "not available".
      const usage = await client(server.url, alice.token).req('GET', '/api/v1/usage?group_by=day');
      await page.getByRole('link', { name: 'Usage' }).click();
      if (usage.status === 200) await page.getByTestId('usage-chart').or(page.getByText('No usage in this period')).first().waitFor();
      else await page.getByText('Usage metering is not available on this server.').waitFor();
      await assertAccessible(page, 'usage');
      await screenshots(page, shots, 'usage');

      // Docs site and API reference.
      await page.goto(`${server.url}/docs`);
      await page.getByRole('heading', { name: 'Mags docs' }).waitFor();
      await assertAccessible(page, 'docs index');
      await page.goto(`${server.url}/docs/cookbook`);
      await page.getByRole('heading', { level: 1, name: 'Cookbook' }).waitFor();
      await assertAccessible(page, 'docs page');
      await screenshots(page, shots, 'docs');
      const llms = await fetch(`${server.url}/llms.txt`);
      assert.match(await llms.text(), /^# Mags, self-hosted/);
      await page.goto(`${server.url}/docs/api`);
      await page.getByText('Submit a job').first().waitFor({ timeout: 30_000 });

      // Sign out: the session ends and pages send you to sign in.
      await page.goto(`${server.url}/jobs`);
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL('**/login');
      await page.goto(`${server.url}/tokens`);
      await page.waitForURL('**/login?next=%2Ftokens');
      assert.deepEqual(alerts, []);
    } finally {
      await ctx.close();
    }
  });

  it('admin page: invite link, users, pool and health', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, bypassCSP: true }) // axe-core is injected inline;
    try {
      const { page } = await newPage(ctx);
      await page.goto(`${server.url}/login`);
      await page.getByRole('button', { name: 'API token' }).click();
      await page.getByLabel('API token').fill(server.token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL('**/jobs');
      await page.getByRole('link', { name: 'Admin' }).click();
      await page.getByRole('heading', { level: 1, name: 'Admin' }).waitFor();
      await page.getByLabel('Username', { exact: true }).fill('frank');
      await page.getByRole('button', { name: 'Create and invite' }).click();
      const url = (await page.getByTestId('invite-url').textContent())!.trim();
      assert.match(url, /\/invite\/[A-Za-z0-9_-]{20,}$/);
      await page.getByRole('cell', { name: 'frank', exact: true }).waitFor();
      await page.getByText('Idle sandboxes').waitFor();
      await assertAccessible(page, 'admin');
      await screenshots(page, shots, 'admin');
    } finally {
      await ctx.close();
    }
  });

  it('web terminal: a shell in a running persistent job, typed into and resized', async (t) => {
    const spec = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    if (!spec.paths['/api/v1/mags-jobs/{id}/terminal-ticket']) return t.skip('this server has no web terminal (branch execssh not merged)');
    const c = client(server.url, alice.token);
    const id = await c.submit({ type: 'inline', name: 'term-box', persistent: true, script: 'true' });
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    try {
      const { page } = await newPage(ctx);
      await signIn(page, 'alice', PASSWORD);
      await page.goto(`${server.url}/jobs/${id}`);
      await page.getByText('Connected: a shell in the sandbox.').waitFor({ timeout: 60_000 });
      const term = page.getByTestId('terminal');
      await term.click();
      await page.keyboard.type('echo $((6*7))-answer; stty size\n');
      await term.getByText('42-answer').waitFor({ timeout: 20_000 });
      const size = async () => {
        await page.keyboard.type('clear; stty size\n');
        await page.waitForTimeout(800);
        // One element per terminal row: the last row that is only "ROWS COLS" is stty's answer.
        const rows = (await term.locator('.xterm-rows > div').allTextContents()).map((r) => r.replace(/\u00a0/g, ' ').trim());
        const answer = rows.filter((r) => /^\d+ \d+$/.test(r)).pop();
        return answer ? Number(answer.split(' ')[1]) : 0;
      };
      const wide = await size();
      await page.setViewportSize({ width: 700, height: 860 });
      await page.waitForTimeout(500);
      const narrow = await size();
      assert.ok(wide > 0 && narrow > 0 && narrow < wide, `columns follow the window: ${wide} -> ${narrow}`);
    } finally {
      await ctx.close();
      await c.req('POST', `/api/v1/mags-jobs/${id}/stop`);
    }
  });

  it('job names, output and workspace names with HTML are shown as text; nothing runs', async () => {
    const evil = '<img src=x onerror="alert(1)"><script>alert(2)</script>';
    const c = client(server.url, alice.token);
    // Workspace names are refused unless they are plain names, so markup never gets that far.
    const badWs = await c.req('POST', '/api/v1/mags-jobs', { type: 'inline', workspace_id: 'ws-<b>bold</b>', script: 'true' });
    assert.equal(badWs.status, 400);
    assert.equal(badWs.body.code, 'VALIDATION_ERROR');
    const id = await c.submit({ type: 'inline', name: evil, script: `echo '${evil}'; printf '\\033[31mred\\033[0m\\n'` });
    await c.waitDone(id);
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    try {
      const { page, alerts } = await newPage(ctx);
      let injected = 0;
      await page.exposeFunction('__injected', () => injected++);
      await signIn(page, 'alice', PASSWORD);
      await page.getByText(evil).first().waitFor();
      const nav = await page.goto(`${server.url}/jobs/${id}`);
      assert.match((await nav!.allHeaders())['content-security-policy'] ?? '', /script-src 'self'/, 'client routes carry the CSP too');
      await page.getByTestId('logs').getByText(evil).waitFor({ timeout: 30_000 });
      await page.getByTestId('logs').getByText('red', { exact: true }).waitFor();
      assert.equal(await page.locator('img[src="x"]').count(), 0, 'no <img> element came from user data');
      assert.equal(await page.locator('main script').count(), 0, 'no <script> element came from user data');
      await page.waitForTimeout(300);
      assert.deepEqual(alerts, [], 'no injected script ran');
      assert.equal(injected, 0);
    } finally {
      await ctx.close();
    }
  });

  it('a cross-site form post with the session cookie does nothing', async () => {
    const c = client(server.url, alice.token);
    const id = await c.submit({ type: 'inline', name: 'csrf-target', script: 'sleep 120' });
    let attacker: Server | undefined;
    const ctx = await browser.newContext();
    try {
      const { page } = await newPage(ctx);
      await signIn(page, 'alice', PASSWORD);
      // Another origin on the same host (same site for SameSite, so the cookie IS sent): only the
      // server's CSRF checks stand between the form and the job.
      attacker = createServer((_req, res) => {
        res.setHeader('content-type', 'text/html');
        res.end(`<!doctype html><form id=f method=POST action="${server.url}/api/v1/mags-jobs/${id}/stop" enctype="text/plain"><input name=x value=y></form>
<form id=g method=POST action="${server.url}/api/v1/tokens" enctype="text/plain" target=other><input name='{"name":"csrf","x":"' value='"}'></form>
<iframe name=other></iframe><script>document.getElementById('g').submit(); setTimeout(() => document.getElementById('f').submit(), 300)</script>`);
      });
      await new Promise<void>((r) => attacker!.listen(0, '127.0.0.1', r));
      const port = (attacker.address() as { port: number }).port;
      const answer = page.waitForResponse((r) => r.url().endsWith('/stop'));
      await page.goto(`http://127.0.0.1:${port}/`);
      const res = await answer;
      assert.equal(res.status(), 403);
      assert.equal(((await res.json()) as { code: string }).code, 'CSRF_REJECTED');
      await page.waitForTimeout(500);
      const st = await c.req('GET', `/api/v1/mags-jobs/${id}/status`);
      assert.notEqual(st.body.end_reason, 'cancelled');
      assert.ok(['pending', 'running'].includes(st.body.status as string), `job still ${st.body.status}`);
      const tokens = await c.req('GET', '/api/v1/tokens');
      assert.equal((tokens.body.tokens as Array<{ name: string }>).some((t) => t.name.startsWith('{') || t.name === 'csrf'), false);
      // The session is still good.
      await page.goto(`${server.url}/jobs`);
      await page.getByRole('link', { name: 'csrf-target' }).waitFor();
    } finally {
      await ctx.close();
      attacker?.close();
      await c.req('POST', `/api/v1/mags-jobs/${id}/stop`);
    }
  });

  it("another user's job page says not found; a disabled user is signed out at once", async () => {
    const bobToken = (await admin.req('POST', '/api/v1/users', { name: 'bob' })).body.token as string;
    const bob = client(server.url, bobToken);
    const bobJob = await bob.submit({ type: 'inline', name: 'bobs-secret', script: 'echo bob-only' });
    await bob.waitDone(bobJob);
    const ctx = await browser.newContext();
    try {
      const { page } = await newPage(ctx);
      await signIn(page, 'alice', PASSWORD);
      await page.goto(`${server.url}/jobs/${bobJob}`);
      await page.getByRole('alert').getByText(/No job of yours/).waitFor();
      assert.equal(await page.getByText('bob-only').count(), 0);
      const dis = await admin.req('PATCH', `/api/v1/users/${alice.id}`, { disabled: true });
      assert.equal(dis.status, 200);
      await page.getByRole('link', { name: 'Tokens' }).click();
      await page.waitForURL(/\/login/);
      assert.equal((await client(server.url, alice.token).req('GET', '/api/v1/me')).status, 401);
    } finally {
      await ctx.close();
      await admin.req('PATCH', `/api/v1/users/${alice.id}`, { disabled: false });
    }
  });
});
