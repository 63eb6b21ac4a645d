#!/usr/bin/env node
// Builds what the daemon serves at /downloads/ (run after `npm run build`):
//   mags-cli.tgz   the CLI with its dependencies bundled (@mags/sdk, commander): `npm i -g <url>`
//                  installs it with only Node, no registry
//   mags-sdk.tgz   the Node SDK (no runtime dependencies)
//   magpie_mags-<version>-py3-none-any.whl   the Python SDK (standard library only)
// into packages/server/dist/downloads/ (or the directory given as the first argument). Everything
// is staged in a temp directory: nothing is written into the source tree.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = process.argv[2] ?? join(REPO, 'packages/server/dist/downloads');
const stage = mkdtempSync(join(tmpdir(), 'mags-downloads-'));
try {
  mkdirSync(OUT, { recursive: true });
  const pack = (dir, name) => {
    const file = execFileSync('npm', ['pack', '--silent', '--pack-destination', stage], { cwd: dir, encoding: 'utf8' }).trim().split('\n').pop();
    renameSync(join(stage, file), join(OUT, name));
  };

  // The SDK: packed as it is.
  pack(join(REPO, 'packages/sdk'), 'mags-sdk.tgz');

  // The CLI: a copy whose package.json bundles its dependencies, with them in its node_modules.
  const cli = join(stage, 'cli');
  const pkg = JSON.parse(readFileSync(join(REPO, 'packages/cli/package.json'), 'utf8'));
  for (const f of [...pkg.files, 'README.md', 'LICENSE']) cpSync(join(REPO, 'packages/cli', f), join(cli, f), { recursive: true });
  pkg.bundleDependencies = Object.keys(pkg.dependencies);
  writeFileSync(join(cli, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
  const copyPackage = (name, from) => {
    const meta = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8'));
    const to = join(cli, 'node_modules', name);
    // A glob in `files` (commander's `lib/*.js`) copies its directory.
    const entries = (meta.files ?? []).map((f) => (f.includes('*') ? dirname(f) : f));
    for (const f of [...entries, 'package.json', 'README.md', 'LICENSE', 'Readme.md']) {
      try {
        cpSync(join(from, f), join(to, f), { recursive: true });
      } catch (err) {
        if (err.code !== 'ENOENT') throw err;
      }
    }
  };
  copyPackage('@mags/sdk', join(REPO, 'packages/sdk'));
  copyPackage('commander', join(REPO, 'node_modules/commander'));
  pack(cli, 'mags-cli.tgz');

  // The Python SDK: a pure-Python wheel written directly (no build backend or network needed).
  for (const f of readdirSync(OUT)) if (f.endsWith('.whl')) rmSync(join(OUT, f));
  execFileSync('python3', [join(REPO, 'scripts/build-wheel.py'), join(REPO, 'packages/sdk-python'), OUT], { stdio: 'inherit' });
  console.log(`downloads in ${OUT}: ${readdirSync(OUT).join(', ')}`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
