/** The package works from both module systems, as `@magpiecloud/mags` users load it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const pkgDir = fileURLToPath(new URL('../../', import.meta.url));

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: pkgDir, encoding: 'utf8', env: { ...process.env, MAGS_API_TOKEN: 't', MAGS_API_URL: 'http://x:1' } });
}

test('require(): the module is the Mags class with every export attached', () => {
  const out = node([
    '-e',
    `const Mags = require('@mags/sdk');
     const { Mags: M2, NotFoundError, MagsError } = require('@mags/sdk');
     const m = new Mags();
     console.log(JSON.stringify([typeof Mags, Mags === M2, Mags.default === Mags, new NotFoundError('x', { code: 'NOT_FOUND' }) instanceof MagsError, m.apiUrl, typeof m.runAndWait]));`,
  ]);
  assert.deepEqual(JSON.parse(out), ['function', true, true, true, 'http://x:1', 'function']);
});

test('import: default and named exports', () => {
  const out = node([
    '--input-type=module',
    '-e',
    `import Mags, { Mags as M2, TimeoutError } from '@mags/sdk';
     console.log(JSON.stringify([Mags === M2, typeof TimeoutError, new Mags().apiUrl]));`,
  ]);
  assert.deepEqual(JSON.parse(out), [true, 'function', 'http://x:1']);
});
