/** src/api/schema.gen.ts is what openapi-typescript makes of the committed spec/openapi.json. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SDK_DIR = fileURLToPath(new URL('../../', import.meta.url));
const REPO_ROOT = join(SDK_DIR, '..', '..');

test('src/api/schema.gen.ts is up to date with spec/openapi.json (npm run gen:types -w packages/sdk)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mags-gen-types-'));
  try {
    const out = join(dir, 'schema.gen.ts');
    const cli = join(REPO_ROOT, 'node_modules', 'openapi-typescript', 'bin', 'cli.js');
    execFileSync(process.execPath, [cli, join(REPO_ROOT, 'spec', 'openapi.json'), '-o', out], { stdio: 'pipe' });
    const committed = readFileSync(join(SDK_DIR, 'src', 'api', 'schema.gen.ts'), 'utf8');
    assert.ok(committed === readFileSync(out, 'utf8'), 'packages/sdk/src/api/schema.gen.ts is stale: run npm run gen:types -w packages/sdk');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
