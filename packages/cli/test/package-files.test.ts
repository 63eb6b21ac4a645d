/** The repository has its LICENSE; the CLI and SDK tarballs carry a README and the LICENSE. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

test('LICENSE is the full Apache-2.0 text', () => {
  const text = readFileSync(`${ROOT}LICENSE`, 'utf8');
  assert.match(text, /Apache License\s+Version 2\.0, January 2004/);
  assert.match(text, /END OF TERMS AND CONDITIONS/);
  assert.ok(text.length > 10_000, 'the full text, not a stub');
});

for (const pkg of ['cli', 'sdk']) {
  test(`npm pack of packages/${pkg} includes README.md and LICENSE and declares Apache-2.0`, () => {
    const dir = `${ROOT}packages/${pkg}`;
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as [{ files: { path: string }[] }];
    const paths = packed.files.map((f) => f.path);
    assert.ok(paths.includes('README.md'), `README.md in ${paths.join(', ')}`);
    assert.ok(paths.includes('LICENSE'), `LICENSE in ${paths.join(', ')}`);
    assert.equal(readFileSync(`${dir}/LICENSE`, 'utf8'), readFileSync(`${ROOT}LICENSE`, 'utf8'));
    assert.equal((JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')) as { license?: string }).license, 'Apache-2.0');
  });
}
