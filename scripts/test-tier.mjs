#!/usr/bin/env node
// Runs one tier of the test suite from the compiled trees (run `npm run build` first):
//   node scripts/test-tier.mjs unit          no root, no sandboxes, no PostgreSQL; in parallel
//   node scripts/test-tier.mjs integration   real sandboxes (root), PostgreSQL; one file at a time
//   node scripts/test-tier.mjs e2e           a real server driven through the SDKs and the CLI
//   node scripts/test-tier.mjs <tier> --list prints the tier's files and runs nothing
// The tier of a test file is decided here, by its path under the package (test/NAME.test.ts).
// A file listed nowhere is an integration test, so a new test never lands in the fast tier
// unless someone says it needs nothing. ./test.sh runs every file of every tier.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Needs no root, no sandbox, no PostgreSQL cluster, no network beyond loopback. */
const UNIT = new Set([
  'server/test/admission.test',
  'server/test/api.test',
  'server/test/bad-input.test',
  'server/test/config.test',
  'server/test/cron-engine.test',
  'server/test/pass-loop.test',
  'server/test/retention.test',
  'server/test/cron-restart.test',
  'server/test/cron-api.test',
  'server/test/webhook-target.test',
  'server/test/webhooks.test',
  'server/test/docs.test',
  'server/test/files-unit.test',
  'server/test/fs-serve-unit.test',
  'server/test/host-limits.test',
  'server/test/live.test',
  'server/test/log-volume.test',
  'server/test/network-unit.test',
  'server/test/proxy.test',
  'server/test/proxy-tls.test',
  'server/test/pool.test',
  'server/test/procview-unit.test',
  'server/test/runtime-conformance-fake.test',
  'server/test/runtime-lines.test',
  'server/test/runtime-registry.test',
  'server/test/scheduler.test',
  'server/test/sessions.test',
  'server/test/login-limiter.test',
  'server/test/web-docs.test',
  'server/test/web-serving.test',
  'server/test/usage.test',
  'server/test/ssh-unit.test',
  'server/test/guest-flow.test',
  'server/test/stdin.test',
  'server/test/jobs-manage.test',
  'server/test/error-registry.test',
  'server/test/logger.test',
  'cli/test/exit-code.test',
  'cli/test/offline.test',
  'cli/test/package-files.test',
  'cli/test/script.test',
  'cli/test/stdin-upload.test',
  'cli/test/skill.test',
  'sdk/test/client.test',
  'sdk/test/generated-types.test',
  'sdk/test/robustness.test',
  'sdk/test/module-formats.test',
  'sdk/test/shared-cases.test',
  'sdk-python/tests/test_client.py',
  'sdk-python/tests/test_shared_cases.py',
  'sdk-python/tests/test_spec_types.py',
  'sdk-python/tests/test_robustness.py',
  'sdk-python/tests/test_raw_stdin.py',
  'sdk-python/tests/test_exec_stream.py',
]);

/** Unit files with PostgreSQL parts: the unit tier skips those parts, the integration tier runs the whole file. */
const ALSO_INTEGRATION = new Set(['server/test/api.test', 'server/test/sessions.test']);

/** Starts a real server (real sandboxes) and drives it as a user would. */
const E2E = new Set([
  'server/test/e2e-cron.test',
  'server/test/e2e-curl.test',
  'server/test/e2e-dashboard.test',
  'server/test/e2e-jobs.test',
  'server/test/e2e-proxy.test',
  'server/test/e2e-proxy-restart.test',
  'server/test/e2e-server.test',
  'server/test/data-modes.test',
  'server/test/error-answers.test',
  'cli/test/docs-examples.test',
  'cli/test/e2e.test',
  'cli/test/e2e-cron.test',
  'cli/test/e2e-output.test',
  'cli/test/e2e-stdin.test',
  'cli/test/e2e-manage.test',
  'cli/test/e2e-install.test',
  'cli/test/e2e-tty.test',
  'cli/test/e2e-endings.test',
  'cli/test/e2e-files.test',
  'cli/test/e2e-urls.test',
  'cli/test/e2e-exec-pipe.test',
  'cli/test/server-command.test',
  'sdk/test/e2e.test',
  'sdk-python/tests/test_e2e.py',
  'sdk-python/tests/test_e2e_raw_stdin.py',
  'sdk-python/tests/test_e2e_files.py',
  'sdk-python/tests/test_e2e_exec_stream.py',
]);

const TIERS = ['unit', 'integration', 'e2e'];

/** The tiers of a test file named `<package>/test/<name>.test` or `sdk-python/tests/<file>.py`. */
export function tiersOf(name) {
  if (UNIT.has(name)) return ALSO_INTEGRATION.has(name) ? ['unit', 'integration'] : ['unit'];
  if (E2E.has(name)) return ['e2e'];
  return ['integration'];
}

function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** Every compiled TypeScript test file and every pytest file, with its manifest name. */
function allTests() {
  const out = [];
  for (const pkg of readdirSync(join(REPO, 'packages'))) {
    const testDir = join(REPO, 'packages', pkg, 'dist', 'test');
    for (const file of walk(testDir).filter((f) => f.endsWith('.test.js'))) {
      out.push({ kind: 'node', file, name: `${pkg}/test/${relative(testDir, file).replace(/\.js$/, '')}` });
    }
  }
  const pyDir = join(REPO, 'packages', 'sdk-python', 'tests');
  for (const file of walk(pyDir).filter((f) => /\/test_[^/]+\.py$/.test(f))) {
    out.push({ kind: 'python', file, name: `sdk-python/tests/${relative(pyDir, file)}` });
  }
  return out;
}

function main(argv) {
  const tier = argv[0];
  if (!TIERS.includes(tier)) {
    process.stderr.write(`usage: node scripts/test-tier.mjs <${TIERS.join('|')}> [--list]\n`);
    return 2;
  }
  const all = allTests();
  const known = new Set(all.map((t) => t.name));
  const stale = [...UNIT, ...E2E].filter((name) => !known.has(name));
  if (stale.length > 0) {
    process.stderr.write(`scripts/test-tier.mjs lists test files that do not exist (renamed or not built?): ${stale.join(', ')}\n`);
    return 1;
  }
  const tests = all.filter((t) => tiersOf(t.name).includes(tier));
  const node = tests.filter((t) => t.kind === 'node');
  const python = tests.filter((t) => t.kind === 'python');
  if (argv.includes('--list')) {
    for (const t of tests) process.stdout.write(`${t.name}\n`);
    return 0;
  }
  if (node.length === 0) {
    process.stderr.write(`no compiled ${tier} tests under packages/*/dist/test: run npm run build first\n`);
    return 1;
  }
  const concurrency = tier === 'unit' ? Math.max(2, availableParallelism()) : 1;
  let status = 0;
  const env = { ...process.env, MAGS_TEST_TIER: tier };
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...node.map((t) => t.file)], { stdio: 'inherit', cwd: REPO, env });
  if (r.status !== 0) status = 1;
  if (python.length > 0) {
    const python3 = process.env.PYTHON ?? 'python3';
    if (spawnSync(python3, ['-c', 'import pytest'], { stdio: 'ignore' }).status !== 0) {
      process.stderr.write(`${python3} has no pytest, so the Python SDK tests did not run: install python3-pytest (apt) or set PYTHON to a python3 that has it.\n`);
      return 1;
    }
    const py = spawnSync(python3, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', ...python.map((t) => relative(join(REPO, 'packages', 'sdk-python'), t.file))], {
      stdio: 'inherit',
      cwd: join(REPO, 'packages', 'sdk-python'),
      env,
    });
    if (py.error) {
      process.stderr.write(`could not run the Python SDK tests (${python3} -m pytest): ${py.error.message}\n`);
      status = 1;
    } else if (py.status !== 0) status = 1;
  }
  return status;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main(process.argv.slice(2));
