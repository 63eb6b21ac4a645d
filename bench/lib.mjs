// Helpers shared by the benchmark scripts: statistics, the podman baseline, a real server started
// for the run, SSE reading.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The q-quantile (0..1) of an ascending array: nearest rank. */
export function quantile(sorted, q) {
  return sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1))];
}

export function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: quantile(s, 0.5), p95: quantile(s, 0.95), min: s[0], max: s[s.length - 1] };
}

/** `--name N` from the command line as a number, else `fallback`. */
export function numberOption(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

export function fmt(ms) {
  return ms === undefined ? '-' : ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
}

/**
 * Samples (ms) of `podman run --rm ... sh -c 'echo hi'` of the same root file system as the erofs
 * image at `imagePath` (imported once per image version), without and with podman's default
 * network; null when podman is not installed. The flags are the ones podman 4.3 needs on such a
 * host (see docs/benchmarks.md).
 */
export function podmanSamples(imagePath, runs) {
  if (spawnSync('podman', ['--version']).status !== 0) return null;
  const tag = `mags-bench:${basename(dirname(imagePath))}`;
  if (spawnSync('podman', ['image', 'exists', tag]).status !== 0) {
    const mnt = mkdtempSync(join(tmpdir(), 'mags-bench-podman-'));
    try {
      execFileSync('mount', ['-t', 'erofs', '-o', 'loop,ro', imagePath, mnt]);
      execFileSync('sh', ['-c', `tar -C ${mnt} -c . | podman import - ${tag} >/dev/null 2>&1`]);
    } finally {
      spawnSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  }
  const base = ['run', '--rm', '--runtime', 'runc', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];
  const time = (extra) => {
    const samples = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      const r = spawnSync('podman', [...base, ...extra, tag, 'sh', '-c', 'echo hi'], { encoding: 'utf8' });
      samples.push(performance.now() - t);
      if (r.stdout.trim() !== 'hi') throw new Error(`podman failed: ${r.stderr}`);
    }
    return samples;
  };
  return { none: time(['--network', 'none']), net: time([]) };
}

/** Prints rows of { name, n, p50, p95 } as an aligned table with a baseline ratio column. */
export function printTable(title, rows) {
  console.log(`\n${title}`);
  const w = Math.max(...rows.map((r) => r.name.length), 10);
  console.log(`${'case'.padEnd(w)}  ${'n'.padStart(4)}  ${'p50 ms'.padStart(8)}  ${'p95 ms'.padStart(8)}  note`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(w)}  ${String(r.n ?? '-').padStart(4)}  ${fmt(r.p50).padStart(8)}  ${fmt(r.p95).padStart(8)}  ${r.note ?? ''}`);
  }
}

/** Starts a real Mags server (of `repo`, default this tree) on free ports with its own data dir; resolves once it is ready. */
export async function startServer(env = {}, repo = REPO) {
  const dataDir = mkdtempSync(join(tmpdir(), 'mags-bench-'));
  const home = mkdtempSync(join(tmpdir(), 'mags-bench-home-'));
  const child = spawn(process.execPath, [join(repo, 'packages/server/dist/src/main.js')], {
    env: {
      ...process.env,
      HOME: home,
      MAGS_DATA_DIR: dataDir,
      MAGS_PORT: '0',
      MAGS_PROXY_PORT: '0',
      MAGS_LOG_LEVEL: 'warn',
      MAGS_IMAGE_DIR: process.env.MAGS_IMAGE_DIR ?? '/var/cache/mags/images',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-8000);
  });
  let proxyPort;
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server not ready after 300 s:\n${stderr}`)), 300_000);
    child.stdout.on('data', (d) => {
      out += d;
      proxyPort ??= Number(out.match(/Mags proxy ready at https?:\/\/\S+:(\d+) /)?.[1]) || undefined;
      const m = out.match(/Mags server ready at (\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${stderr}`)));
  });
  const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          r();
        }, 30_000);
        child.on('exit', () => {
          clearTimeout(t);
          r();
        });
      });
    }
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  };
  return { url, token, dataDir, stop, pid: child.pid, proxyPort };
}

export function api(server) {
  const headers = { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' };
  return {
    /** Any API call; answers the parsed JSON, throws on a non-2xx status. */
    async call(method, path, body) {
      const res = await fetch(`${server.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const json = await res.json();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    },
    async submit(script, extra = {}) {
      const res = await fetch(`${server.url}/api/v1/mags-jobs`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ script, type: 'inline', ...extra }),
      });
      if (res.status !== 202) throw new Error(`submit: ${res.status} ${await res.text()}`);
      return (await res.json()).request_id;
    },
    async json(path) {
      const res = await fetch(`${server.url}${path}`, { headers });
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return res.json();
    },
    /** Follows the SSE log stream until the end event; returns { lines, end }. */
    async follow(id) {
      const res = await fetch(`${server.url}/api/v1/mags-jobs/${id}/logs?follow=1`, {
        headers: { ...headers, accept: 'text/event-stream' },
      });
      if (!res.ok) throw new Error(`follow: ${res.status} ${await res.text()}`);
      const lines = [];
      let end;
      let buf = '';
      const decoder = new TextDecoder();
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event === 'log' && data) lines.push(JSON.parse(data));
          if (event === 'end' && data) end = JSON.parse(data);
        }
        if (end) break;
      }
      return { lines, end };
    },
    async waitPoolIdle(min, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = await this.json('/api/v1/mags-jobs/pool-status');
        if (s.idle_vms >= min) return s;
        if (Date.now() > deadline) throw new Error(`pool did not reach ${min} idle: ${JSON.stringify(s)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}
