#!/usr/bin/env node
/**
 * Workspace sync benchmark, side by side in one run with `restic backup` of the same tree to a local
 * repository (Debian package `restic`; skipped with a note when it is not installed):
 *   - a ~40 MB workspace in ~1500 files: first sync, no-change sync, one changed file
 *   - the same shape at ~400 MB (sizes x10, same file count): no-change and one changed file
 *   - full restore of ~100 MB
 *   - a 200 MB file: one changed byte (upload size), and one byte inserted at the front
 *   - what content-defined chunking would cost: a JS gear rolling hash vs sha256 throughput
 * Needs a built tree (`npm run build`). Prints a table and writes bench/workspace.results.json.
 *
 *   node bench/workspace.mjs [--runs 20] [--restic-runs 5]
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, closeSync, writeSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, numberOption, REPO, stats } from './lib.mjs';

const dist = join(REPO, 'packages/server/dist/src');
const { createBlobStore } = await import(join(dist, 'storage/blobs/index.js'));
const { WorkspaceSync } = await import(join(dist, 'workspaces/sync/index.js'));
const { silentLogger } = await import(join(dist, 'logger.js'));

const RUNS = numberOption('--runs', 20);
const RESTIC_RUNS = numberOption('--restic-runs', 5);
const MIB = 1024 * 1024;

/** ~`totalMiB` in `files` files (many small, some larger, like /root after a pip install) in nested dirs. */
function buildTree(root, files, totalMiB, seed) {
  const weights = Array.from({ length: files }, (_, i) => (i % 50 === 0 ? 60 : i % 7 === 0 ? 6 : 1));
  const unit = (totalMiB * MIB) / weights.reduce((a, b) => a + b, 0);
  const pool = randomBytes(8 * MIB);
  for (let i = 0; i < files; i++) {
    const dir = join(root, `pkg${i % 40}`, `mod${i % 7}`);
    mkdirSync(dir, { recursive: true });
    const size = Math.max(1, Math.round(weights[i] * unit));
    const fd = openSync(join(dir, `file-${seed}-${i}.py`), 'w');
    for (let done = 0; done < size; ) {
      const n = Math.min(size - done, pool.length - 16);
      const off = (i * 7919 + done) % (pool.length - n);
      const buf = Buffer.from(pool.subarray(off, off + n));
      buf.write(`${seed}:${i}:${done}`, 0);
      writeSync(fd, buf);
      done += n;
    }
    closeSync(fd);
  }
}

async function time(fn) {
  const cpu = process.cpuUsage();
  const t = performance.now();
  const r = await fn();
  const c = process.cpuUsage(cpu);
  return { ms: performance.now() - t, cpuMs: (c.user + c.system) / 1000, r };
}

function restic(repo, args) {
  const t = performance.now();
  const r = spawnSync('restic', ['--repo', repo, '--quiet', ...args], { encoding: 'utf8', env: { ...process.env, RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: join(repo, '..', 'restic-cache') } });
  if (r.status !== 0) throw new Error(`restic ${args[0]} failed: ${r.stderr}`);
  return performance.now() - t;
}

/** Throughput (MB/s) of a gear rolling hash over a buffer: the inner loop of content-defined chunking. */
function gearMBps(buf) {
  const gear = new Uint32Array(256).map(() => (Math.random() * 2 ** 32) >>> 0);
  const t = performance.now();
  let h = 0;
  let cuts = 0;
  for (let i = 0; i < buf.length; i++) {
    h = ((h << 1) + gear[buf[i]]) >>> 0;
    if ((h & 0x1fffff) === 0) cuts++;
  }
  return { mbps: buf.length / MIB / ((performance.now() - t) / 1000), cuts };
}

function sha256MBps(buf) {
  const t = performance.now();
  createHash('sha256').update(buf).digest();
  return buf.length / MIB / ((performance.now() - t) / 1000);
}

const work = mkdtempSync(join(tmpdir(), 'mags-bench-ws-'));
const results = { host: { load: loadavg().map((x) => +x.toFixed(2)) }, rows: {} };
const row = (name, samples, extra = {}) => {
  results.rows[name] = { ...stats(samples), ...extra };
};
try {
  const blobs = await createBlobStore({ driver: 'fs', root: join(work, 'blobs') });
  const sync = new WorkspaceSync({ blobs, log: silentLogger(), cacheDir: join(work, 'cache') });
  const haveRestic = spawnSync('restic', ['version']).status === 0;
  if (!haveRestic) console.error('restic is not installed (apt-get install restic): running without the comparison');

  for (const [label, totalMiB] of [['40MB', 40], ['400MB', 400]]) {
    const src = join(work, `src-${label}`);
    buildTree(src, 1500, totalMiB, label);
    const first = await time(() => sync.sync(label, src));
    row(`${label} first sync`, [first.ms], { uploadedMiB: +(first.r.uploadedBytes / MIB).toFixed(1), files: first.r.files });
    const none = [];
    const noneCpu = [];
    for (let i = 0; i < RUNS; i++) {
      const t = await time(() => sync.sync(label, src));
      if (t.r.version !== undefined || t.r.readBytes !== 0) throw new Error('a no-change sync made a version or read file contents');
      none.push(t.ms);
      noneCpu.push(t.cpuMs);
    }
    row(`${label} no-change sync`, none, { cpuP50: stats(noneCpu).p50 });
    const one = [];
    let uploaded = 0;
    for (let i = 0; i < RUNS; i++) {
      appendFileSync(join(src, `pkg${i % 40}`, `mod${i % 7}`, `file-${label}-${i}.py`), `# change ${i}\n`);
      const t = await time(() => sync.sync(label, src));
      if (t.r.changedFiles !== 1) throw new Error(`expected one changed file, got ${t.r.changedFiles}`);
      one.push(t.ms);
      uploaded = Math.max(uploaded, t.r.uploadedBytes);
    }
    row(`${label} one changed file`, one, { maxUploadedKiB: +(uploaded / 1024).toFixed(1) });

    if (haveRestic) {
      const repo = join(work, `restic-${label}`);
      restic(repo, ['init']);
      row(`${label} restic first backup`, [restic(repo, ['backup', src])]);
      row(`${label} restic no-change backup`, Array.from({ length: RESTIC_RUNS }, () => restic(repo, ['backup', src])));
      const changed = [];
      for (let i = 0; i < RESTIC_RUNS; i++) {
        appendFileSync(join(src, 'pkg0', 'mod0', `file-${label}-0.py`), `# restic change ${i}\n`);
        changed.push(restic(repo, ['backup', src]));
      }
      row(`${label} restic one changed file`, changed);
    }
    if (label === '40MB') {
      // ~100 MB for the restore figure: the 40 MB tree plus three 20 MB files.
      for (let i = 0; i < 3; i++) writeFileSync(join(src, `big-${i}.bin`), randomBytes(20 * MIB));
      await sync.sync(label, src);
      const rs = [];
      let restoredMiB = 0;
      for (let i = 0; i < Math.max(3, Math.min(RUNS, 5)); i++) {
        const dst = join(work, `restore-${i}`);
        const t = await time(() => sync.restore(label, dst));
        rs.push(t.ms);
        restoredMiB = t.r.bytes / MIB;
        rmSync(dst, { recursive: true, force: true });
      }
      row('full restore (~100 MB)', rs, { MiB: +restoredMiB.toFixed(1) });
      if (haveRestic) {
        const repo = join(work, 'restic-40MB');
        restic(repo, ['backup', src]);
        const rr = [];
        for (let i = 0; i < 3; i++) {
          const dst = join(work, `restic-restore-${i}`);
          rr.push(restic(repo, ['restore', 'latest', '--target', dst]));
          rmSync(dst, { recursive: true, force: true });
        }
        row('restic full restore (~100 MB)', rr);
      }
    }
    rmSync(src, { recursive: true, force: true });
  }

  // One 200 MB file: a changed byte in place, then a byte inserted at the front.
  const bigDir = join(work, 'big');
  mkdirSync(bigDir);
  const big = randomBytes(200 * MIB);
  writeFileSync(join(bigDir, 'data.bin'), big);
  const b0 = await time(() => sync.sync('big', bigDir));
  row('200 MB file first sync', [b0.ms], { uploadedMiB: +(b0.r.uploadedBytes / MIB).toFixed(1) });
  const fd = openSync(join(bigDir, 'data.bin'), 'r+');
  writeSync(fd, Buffer.from([big[123_456_789] ^ 0xff]), 0, 1, 123_456_789);
  closeSync(fd);
  const b1 = await time(() => sync.sync('big', bigDir));
  row('200 MB file, one byte changed', [b1.ms], { uploadedMiB: +(b1.r.uploadedBytes / MIB).toFixed(2) });
  writeFileSync(join(bigDir, 'data.bin'), Buffer.concat([Buffer.from('x'), big]));
  const b2 = await time(() => sync.sync('big', bigDir));
  row('200 MB file, one byte inserted at the front', [b2.ms], { uploadedMiB: +(b2.r.uploadedBytes / MIB).toFixed(1) });

  const sample = big.subarray(0, 64 * MIB);
  const gear = gearMBps(sample);
  results.chunking = { gearMBps: +gear.mbps.toFixed(0), sha256MBps: +sha256MBps(sample).toFixed(0) };
  await blobs.close();
} finally {
  rmSync(work, { recursive: true, force: true });
}

console.log(`load average at start: ${results.host.load.join(' ')}`);
console.log(`${'case'.padEnd(48)} ${'n'.padStart(3)} ${'p50 ms'.padStart(9)} ${'p95 ms'.padStart(9)}  extra`);
for (const [name, r] of Object.entries(results.rows)) {
  const { n, p50, p95, min: _min, max: _max, ...extra } = r;
  console.log(`${name.padEnd(48)} ${String(n).padStart(3)} ${fmt(p50).padStart(9)} ${fmt(p95).padStart(9)}  ${Object.entries(extra).map(([k, v]) => `${k}=${v}`).join(' ')}`);
}
console.log(`chunking: gear rolling hash ${results.chunking.gearMBps} MB/s vs sha256 ${results.chunking.sha256MBps} MB/s (one core, JS)`);
writeFileSync(join(REPO, 'bench/workspace.results.json'), `${JSON.stringify(results, null, 2)}\n`);
