#!/usr/bin/env node
/**
 * Dashboard benchmark against a real server (loopback), in Debian's Chromium:
 *   - bundle size: the JS and CSS a first load fetches, raw and gzip, and the whole build
 *   - first load with a cold cache (a fresh browser context each run): the jobs page until its list
 *     shows, next to a static docs page (no JS) from the same server as the baseline
 *   - the jobs page of a user with 10 000 jobs (paginated on the server) next to one with 10 jobs:
 *     time to the first row, and to page 200
 * Needs a built tree (`npm run build`), root and the base image (the server starts sandboxes).
 * Prints a table and writes bench/web.results.json.
 *
 *   node bench/web.mjs [--runs 15]
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadavg } from 'node:os';
import { fmt, numberOption, REPO, startServer, stats } from './lib.mjs';

const RUNS = numberOption('--runs', 15);
const { chromium } = await import(join(REPO, 'node_modules', 'playwright-core', 'index.mjs'));
const dist = join(REPO, 'packages', 'web', 'dist');

// Bundle size: what index.html pulls in (entry, its CSS and preloaded chunks), and everything.
const indexHtml = readFileSync(join(dist, 'index.html'), 'utf8');
const firstLoad = [...indexHtml.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
const sizeOf = (files) => files.reduce((a, f) => { const b = readFileSync(join(dist, f)); return { raw: a.raw + b.length, gzip: a.gzip + gzipSync(b, { level: 9 }).length }; }, { raw: 0, gzip: 0 });
const allAssets = readdirSync(join(dist, 'assets')).filter((f) => /\.(js|css)$/.test(f)).map((f) => `assets/${f}`);
const bundle = { firstLoad: { files: firstLoad, ...sizeOf(firstLoad) }, all: { files: allAssets.length, ...sizeOf(allAssets) } };

const server = await startServer({ MAGS_POOL_MIN_SIZE: '0' });
const browser = await chromium.launch({ executablePath: process.env.MAGS_TEST_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
const results = {};
try {
  const api = async (token, method, path, body) => {
    const res = await fetch(server.url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const small = await api(server.token, 'POST', '/api/v1/users', { name: 'small' });
  const big = await api(server.token, 'POST', '/api/v1/users', { name: 'big' });

  // Jobs straight into the server's store (submitting 10 000 real jobs would measure the sandboxes).
  const { openStores } = await import(join(REPO, 'packages/server/dist/src/storage/stores.js'));
  const stores = await openStores({ sqlitePath: join(server.dataDir, 'mags.db') });
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const insert = async (userId, n) => {
    for (let i = 0; i < n; i++) {
      const at = new Date(t0 + i * 60_000).toISOString();
      await stores.jobs.insertJob({
        request_id: randomUUID(), user_id: userId, name: `job-${i}`, workspace_id: null, base_workspace_id: null, type: 'inline', script: `echo ${i}`,
        persistent: false, no_sleep: false, startup_command: null, environment: {}, file_ids: [], disk_gb: 2, vcpus: 1, memory_mb: 512, rootfs_type: null,
        timeout_seconds: null, api_version: 1, status: i % 10 === 0 ? 'error' : 'completed', exit_code: i % 10 === 0 ? 1 : 0, end_reason: 'exited', error_message: null,
        vm_id: null, host: null, subdomain: null, url: null, script_duration_ms: 40 + (i % 50), created_at: at, started_at: at, completed_at: at, updated_at: at,
      });
    }
  };
  const tIns = performance.now();
  await insert(small.id, 10);
  await insert(big.id, 10_000);
  const insertMs = performance.now() - tIns;
  await stores.close();

  /** A fresh context (cold cache) signed in as `token`'s user. */
  const signedIn = async (token) => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const res = await ctx.request.post(`${server.url}/api/v1/auth/login`, { data: { token } });
    if (!res.ok()) throw new Error(`login: ${res.status()}`);
    return ctx;
  };
  const measure = async (token, path, ready) => {
    const samples = [];
    for (let i = 0; i < RUNS + 1; i++) {
      const ctx = await signedIn(token);
      try {
        const page = await ctx.newPage();
        const t = performance.now();
        await page.goto(server.url + path);
        await ready(page);
        if (i > 0) samples.push(performance.now() - t); // the first run warms the server, not the browser
      } finally {
        await ctx.close();
      }
    }
    return stats(samples);
  };
  const firstRow = (page) => page.locator('tbody tr').first().waitFor();
  results.docsPageBaseline = await measure(small.token, '/docs/quickstart', (p) => p.getByRole('heading', { level: 1 }).waitFor());
  results.jobsPage10 = await measure(small.token, '/jobs', firstRow);
  results.jobsPage10000 = await measure(big.token, '/jobs', firstRow);
  results.jobsPage10000Page200 = await measure(big.token, '/jobs?page=200', firstRow);
  results.jobsPage10000FilterError = await measure(big.token, '/jobs?status=error', firstRow);
  // Paging inside an open page (warm cache): click Next and wait for the next rows.
  {
    const ctx = await signedIn(big.token);
    const samples = [];
    try {
      const page = await ctx.newPage();
      await page.goto(`${server.url}/jobs`);
      await firstRow(page);
      for (let i = 0; i < RUNS; i++) {
        const before = await page.locator('tbody tr').first().textContent();
        const t = performance.now();
        await page.getByRole('button', { name: 'Next' }).click();
        await page.waitForFunction((b) => document.querySelector('tbody tr')?.textContent !== b, before);
        samples.push(performance.now() - t);
      }
    } finally {
      await ctx.close();
    }
    results.jobsPage10000Next = stats(samples);
  }
  results.insertMs = insertMs;
} finally {
  await browser.close();
  await server.stop();
}

const rows = [
  ['static docs page (baseline, no JS)', results.docsPageBaseline],
  ['jobs page, 10 jobs (cold cache)', results.jobsPage10],
  ['jobs page, 10 000 jobs (cold cache)', results.jobsPage10000],
  ['jobs page 200 of 400 (cold cache)', results.jobsPage10000Page200],
  ['jobs filtered status=error (cold cache)', results.jobsPage10000FilterError],
  ['Next page in an open page (10 000 jobs)', results.jobsPage10000Next],
];
console.log(`\nbundle: first load ${bundle.firstLoad.files.length} files, ${(bundle.firstLoad.raw / 1024).toFixed(1)} KiB raw, ${(bundle.firstLoad.gzip / 1024).toFixed(1)} KiB gzip; all ${bundle.all.files} files ${(bundle.all.gzip / 1024).toFixed(1)} KiB gzip`);
console.log(`\n${'case'.padEnd(44)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)} ${'n'.padStart(4)}`);
for (const [name, s] of rows) console.log(`${name.padEnd(44)} ${fmt(s.p50).padStart(8)} ${fmt(s.p95).padStart(8)} ${String(s.n).padStart(4)}`);
writeFileSync(join(REPO, 'bench', 'web.results.json'), JSON.stringify({ date: new Date().toISOString(), loadavg: loadavg(), runs: RUNS, bundle, results }, null, 2) + '\n');
