import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A real `mags server` started by a test; `stop()` ends it and removes its temp dirs. */
export interface SpawnedServer {
  /** Base URL of the REST API, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** The admin token the server created on first start. */
  token: string;
  /** Port of the public-URL proxy (0 in the env: a free port). */
  proxyPort: number;
  dataDir: string;
  /** The temp HOME the server ran with (its `~/.mags/config.json` lands there). */
  home: string;
  /** The child process (for tests that need its pid or want to kill it hard). */
  child: ChildProcess;
  /** Everything the server wrote to stderr so far (structured logs). */
  stderr(): string;
  /** SIGTERM, wait, SIGKILL after a timeout, then remove the temp dirs this helper created. */
  stop(): Promise<void>;
}

export interface SpawnServerOptions {
  /** Extra environment variables (override the test defaults below). */
  env?: Record<string, string>;
  /** Reuse a data dir (e.g. to test a restart); it is then not removed by `stop()`. */
  dataDir?: string;
  /** Reuse a HOME dir; it is then not removed by `stop()`. */
  home?: string;
  /** How long to wait for the ready line (default 180 s: a first start may build the image). */
  readyTimeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL (default 20 s). */
  stopTimeoutMs?: number;
}

const here = dirname(fileURLToPath(import.meta.url));
/** packages/server/dist/test/helpers -> packages/server/dist/src/main.js */
export const SERVER_MAIN = resolve(here, '..', '..', 'src', 'main.js');

const READY_RE = /^Mags server ready at (http:\/\/\S+)\s*$/m;

/**
 * Starts `node packages/server/dist/src/main.js` with free ports (0), a temp data dir and HOME, the
 * shared image cache (`MAGS_IMAGE_DIR` from the environment, else /var/cache/mags/images) and a pool
 * of one sandbox, waits for the ready line and reads the admin token.
 */
export async function spawnServer(opts: SpawnServerOptions = {}): Promise<SpawnedServer> {
  const ownDataDir = opts.dataDir === undefined;
  const ownHome = opts.home === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'mags-test-data-')));
  const home = opts.home ?? (await mkdtemp(join(tmpdir(), 'mags-test-home-')));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: home,
    MAGS_DATA_DIR: dataDir,
    MAGS_PORT: '0',
    MAGS_PROXY_PORT: '0',
    MAGS_IMAGE_DIR: process.env.MAGS_IMAGE_DIR ?? '/var/cache/mags/images',
    MAGS_POOL_MIN_SIZE: '1',
    MAGS_LOG_LEVEL: process.env.MAGS_LOG_LEVEL ?? 'info',
    ...opts.env,
  };
  const child = spawn(process.execPath, [SERVER_MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
    // Keep memory bounded in long tests: only the tail matters for error messages.
    if (stderr.length > 4 * 1024 * 1024) stderr = stderr.slice(-2 * 1024 * 1024);
  });

  const cleanupDirs = async () => {
    if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
    if (ownHome) await rm(home, { recursive: true, force: true });
  };
  let exited = child.exitCode !== null;
  const exitPromise = new Promise<void>((res) => {
    child.once('exit', () => {
      exited = true;
      res();
    });
  });

  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const timeout = opts.stopTimeoutMs ?? 20_000;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        exitPromise.then(() => false),
        new Promise<boolean>((res) => {
          timer = setTimeout(() => res(true), timeout);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut && !exited) {
        child.kill('SIGKILL');
        await exitPromise;
      }
    }
    await cleanupDirs();
  };

  let url: string;
  try {
    url = await new Promise<string>((res, rej) => {
      const timeoutMs = opts.readyTimeoutMs ?? 180_000;
      const timer = setTimeout(() => {
        rej(new Error(`mags server did not print its ready line within ${timeoutMs} ms; stderr:\n${tail(stderr)}`));
      }, timeoutMs);
      child.stdout!.on('data', (chunk: string) => {
        stdout += chunk;
        const m = READY_RE.exec(stdout);
        if (m) {
          clearTimeout(timer);
          res(m[1]!);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        rej(new Error(`mags server exited (code ${code}, signal ${signal}) before it was ready; stderr:\n${tail(stderr)}`));
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  let token: string;
  try {
    token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
  } catch (err) {
    await stop();
    throw new Error(`mags server is ready but ${join(dataDir, 'admin-token')} is unreadable: ${String(err)}`);
  }
  const proxyPort = Number(/^Mags proxy ready at https?:\/\/\S+:(\d+) /m.exec(stdout)?.[1] ?? 0);
  return { url, token, proxyPort, dataDir, home, child, stderr: () => stderr, stop };
}

function tail(text: string): string {
  return text.length > 8000 ? '...' + text.slice(-8000) : text;
}
