import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createHarness, type Harness } from './helpers/harness.js';

describe('dashboard serving (in-process)', () => {
  let dir: string;
  let built: Harness;
  let bare: Harness;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mags-web-'));
    await mkdir(join(dir, 'assets'));
    await mkdir(join(dir, 'docs'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>app</title><div id=root></div>');
    await writeFile(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
    await writeFile(join(dir, 'docs', 'quickstart.html'), '<h1>Quickstart</h1>');
    await writeFile(join(dir, 'docs', 'index.html'), '<h1>Docs</h1>');
    await writeFile(join(dir, 'llms.txt'), '# Mags');
    built = await createHarness({ webDir: dir });
    bare = await createHarness({ webDir: join(dir, 'missing') });
  });
  after(async () => {
    await built?.close();
    await bare?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves index.html with no-cache and a CSP, hashed assets for a year', async () => {
    const index = await built.app.inject({ method: 'GET', url: '/' });
    assert.equal(index.statusCode, 200);
    assert.match(index.body, /<title>app<\/title>/);
    assert.equal(index.headers['cache-control'], 'no-cache');
    assert.match(String(index.headers['content-security-policy']), /script-src 'self'/);
    const asset = await built.app.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    assert.equal(asset.statusCode, 200);
    assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
    const llms = await built.app.inject({ method: 'GET', url: '/llms.txt' });
    assert.equal(llms.body, '# Mags');
    assert.equal(llms.headers['cache-control'], 'no-cache');
  });

  it('client routes get index.html; /docs/<page> its page; /api paths keep their JSON errors', async () => {
    const html = { accept: 'text/html,application/xhtml+xml' };
    const route = await built.app.inject({ method: 'GET', url: '/jobs/some-id?x=1', headers: html });
    assert.equal(route.statusCode, 200);
    assert.match(route.body, /<title>app<\/title>/);
    assert.match(String(route.headers['content-security-policy']), /frame-ancestors 'none'/);
    const doc = await built.app.inject({ method: 'GET', url: '/docs/quickstart', headers: html });
    assert.match(doc.body, /<h1>Quickstart<\/h1>/);
    const docsIndex = await built.app.inject({ method: 'GET', url: '/docs', headers: html });
    assert.match(docsIndex.body, /<h1>Docs<\/h1>/);
    const traversal = await built.app.inject({ method: 'GET', url: '/docs/..%2F..%2Fetc%2Fpasswd', headers: html });
    assert.doesNotMatch(traversal.body, /root:/);
    const api = await built.app.inject({ method: 'GET', url: '/api/v1/nope', headers: html });
    assert.equal(api.statusCode, 404);
    assert.equal((api.json() as { code: string }).code, 'NOT_FOUND');
    const notHtml = await built.app.inject({ method: 'GET', url: '/favicon-missing.ico' });
    assert.equal(notHtml.statusCode, 404);
    const post = await built.app.inject({ method: 'POST', url: '/jobs', headers: html });
    assert.equal(post.statusCode, 404);
  });

  it('without a build, / says how to build it and the API works', async () => {
    const res = await bare.app.inject({ method: 'GET', url: '/' });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /npm run build/);
    assert.match(res.body, /MAGS_WEB_DIR/);
    const health = await bare.app.inject({ method: 'GET', url: '/health' });
    assert.equal(health.statusCode, 200);
  });
});
