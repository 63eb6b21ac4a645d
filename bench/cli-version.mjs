#!/usr/bin/env node
/**
 * Start-up time of `mags --version` next to `node -e 0` (the floor: Node's own start-up).
 * Uses hyperfine when installed, else a loop of spawnSync; prints median and p95 and exits 1 when the
 * median of `mags --version` is above the budget (default 200 ms; `--budget-ms N`).
 *
 *   node bench/cli-version.mjs [--runs 30] [--budget-ms 200]
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { numberOption, quantile } from './lib.mjs';

const runs = numberOption('--runs', 30);
const budgetMs = numberOption('--budget-ms', 200);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages', 'cli', 'bin', 'mags.js');
const node = process.execPath;

const cases = [
  { name: 'node -e 0', argv: [node, '-e', '0'] },
  { name: 'mags --version', argv: [node, bin, '--version'] },
  { name: 'mags --help', argv: [node, bin, '--help'] },
];

const percentile = (sorted, p) => quantile(sorted, p / 100);

function hasHyperfine() {
  return spawnSync('hyperfine', ['--version'], { stdio: 'ignore' }).status === 0;
}

function measureLoop(argv) {
  const times = [];
  for (let i = 0; i < runs + 3; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
    if (i >= 3) times.push(ms); // the first runs warm the page cache
  }
  return times.sort((a, b) => a - b);
}

function measureHyperfine(argv) {
  const out = execFileSync(
    'hyperfine',
    ['--warmup', '3', '--runs', String(runs), '--export-json', '/dev/stdout', '--style', 'none', '-N', argv.map((a) => JSON.stringify(a)).join(' ')],
    { encoding: 'utf8' },
  );
  return JSON.parse(out).results[0].times.map((s) => s * 1000).sort((a, b) => a - b);
}

const tool = hasHyperfine() ? 'hyperfine' : 'spawnSync loop';
const results = cases.map((c) => {
  const times = tool === 'hyperfine' ? measureHyperfine(c.argv) : measureLoop(c.argv);
  return { name: c.name, median: percentile(times, 50), p95: percentile(times, 95), min: times[0] };
});
console.log(`mags CLI start-up (${runs} runs each, ${tool}, node ${process.version})`);
console.log('command           median    p95      min');
for (const r of results) {
  console.log(`${r.name.padEnd(16)}  ${r.median.toFixed(1).padStart(6)} ms ${r.p95.toFixed(1).padStart(6)} ms ${r.min.toFixed(1).padStart(6)} ms`);
}
const version = results.find((r) => r.name === 'mags --version');
const floor = results.find((r) => r.name === 'node -e 0');
console.log(`mags --version costs ${(version.median - floor.median).toFixed(1)} ms over bare node; budget ${budgetMs} ms total`);
if (version.median > budgetMs) {
  console.error(`FAIL: median ${version.median.toFixed(1)} ms > ${budgetMs} ms`);
  process.exitCode = 1;
}
