/** Runs the real `mags` binary as a subprocess, with a temp HOME so no test touches ~/.mags. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** packages/cli/dist/test -> packages/cli/bin/mags.js */
export const MAGS_BIN = fileURLToPath(new URL('../../bin/mags.js', import.meta.url));

export interface MagsResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Environment without the caller's Mags variables, so only what a test sets counts. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('MAGS_')) env[k] = v;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  delete env.CI;
  return env;
}

export function mags(args: string[], opts: { env: Record<string, string>; input?: string; timeoutMs?: number }): Promise<MagsResult> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [MAGS_BIN, ...args], { env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mags ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 120_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** A temp dir used as HOME; remove it with the returned function. */
export function tempHome(): { home: string; remove: () => void } {
  const home = mkdtempSync(join(tmpdir(), 'mags-cli-home-'));
  return { home, remove: () => rmSync(home, { recursive: true, force: true }) };
}

/** The fields of the server test helper's result this suite uses. */
export interface TestServer {
  url: string;
  token: string;
  /** Port of the server's public-URL proxy. */
  proxyPort: number;
  dataDir: string;
  home: string;
  /** The daemon process (for its pid). */
  child: { pid?: number };
  stop(): Promise<void>;
  stderr(): string;
}

/**
 * Starts a real server (real sandboxes) through the server package's test helper. Loaded by URL from
 * the compiled tree because the server builds after the CLI.
 */
export async function startServer(opts: { env?: Record<string, string> } = {}): Promise<TestServer> {
  const mod = (await import(new URL('../../../server/dist/test/helpers/spawn-server.js', import.meta.url).href)) as {
    spawnServer: (opts?: { env?: Record<string, string> }) => Promise<TestServer>;
  };
  return mod.spawnServer(opts);
}

/** A loopback port with nothing listening (bound, read, then closed). */
export async function deadPort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
