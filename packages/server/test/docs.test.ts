import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '@mags/shared';
import { CONFIG_SETTINGS } from '../src/config.js';
import { generatedFiles, POSTMAN_PATH, REPO_ROOT, SPEC_PATH } from '../src/spec.js';

describe('generated and hand-written docs match the code', () => {
  it('docs/errors.md has one row per error code with its HTTP status', async () => {
    const doc = await readFile(join(REPO_ROOT, 'docs', 'errors.md'), 'utf8');
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      assert.ok(row, `docs/errors.md has no row for ${code}`);
      assert.match(row, new RegExp(`^\\| \`${code}\` \\| ${status} \\|`), `docs/errors.md gives ${code} the wrong status`);
    }
    const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    for (const code of documented) assert.ok(code! in ERROR_CODES, `docs/errors.md documents ${code}, which the registry lacks`);
  });

  it('docs/configuration.md has one row per setting with its flag', async () => {
    const doc = await readFile(join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');
    for (const s of CONFIG_SETTINGS) {
      assert.ok(doc.includes(`| \`${s.env}\` | \`${s.flag}\` |`), `docs/configuration.md has no row for ${s.env} / ${s.flag}`);
    }
  });

  it('spec/openapi.json and the Postman collection are up to date (npm run gen:spec -w packages/server)', async () => {
    const { spec, postman } = await generatedFiles();
    assert.equal(await readFile(SPEC_PATH, 'utf8'), spec, 'spec/openapi.json is stale: run npm run gen:spec -w packages/server');
    assert.equal(await readFile(POSTMAN_PATH, 'utf8'), postman, 'docs/mags-postman-collection.json is stale');
  });

  it('the spec covers every Mags jobs endpoint', async () => {
    const spec = JSON.parse(await readFile(SPEC_PATH, 'utf8')) as { paths: Record<string, Record<string, unknown>> };
    const want: Array<[string, string]> = [
      ['post', '/api/v1/mags-jobs'],
      ['post', '/api/v2/mags-jobs'],
      ['get', '/api/v1/mags-jobs'],
      ['get', '/api/v1/mags-jobs/{id}/status'],
      ['get', '/api/v1/mags-jobs/{id}/logs'],
      ['post', '/api/v1/mags-jobs/{id}/access'],
      ['patch', '/api/v1/mags-jobs/{id}'],
      ['post', '/api/v1/mags-jobs/{id}/stop'],
      ['get', '/api/v1/mags-jobs/pool-status'],
      ['get', '/health'],
      ['get', '/api/v1/me'],
      ['post', '/api/v1/tokens'],
      ['get', '/api/v1/tokens'],
      ['delete', '/api/v1/tokens/{id}'],
      ['post', '/api/v1/users'],
      ['get', '/api/v1/users'],
    ];
    for (const [method, path] of want) assert.ok(spec.paths[path]?.[method], `${method.toUpperCase()} ${path} is missing from the spec`);
  });
});
