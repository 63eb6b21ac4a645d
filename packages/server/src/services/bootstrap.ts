import { existsSync } from 'node:fs';
import { chmod, mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

/**
 * First start: writes the admin token to `<dataDir>/admin-token` (0600, token + newline) right after
 * the admin is created, so a crash before listening cannot lose it.
 */
export async function writeAdminToken(opts: { dataDir: string; token: string; log: Logger }): Promise<void> {
  const tokenFile = join(opts.dataDir, 'admin-token');
  await writeFile(tokenFile, opts.token + '\n', { mode: 0o600 });
  await chmod(tokenFile, 0o600);
  opts.log.info({ file: tokenFile }, 'wrote the admin token');
}

/** Files and directories of the data dir that hold tokens, job logs or workspace contents. */
const PRIVATE_FILES = ['mags.db', 'mags.db-wal', 'mags.db-shm', 'admin-token'];
const PRIVATE_DIRS = ['workspaces', 'sync-cache'];

/**
 * Makes the data dir private before anything is opened: the dir itself, `workspaces`, `sync-cache`
 * and the blob dir 0700; the SQLite database and its -wal/-shm files and the admin token 0600.
 * A new SQLite database is created empty with 0600 first, because SQLite gives the -wal and -shm
 * files the mode of the database file. Existing files from an earlier start are tightened too.
 */
export async function secureDataDir(opts: { dataDir: string; blobDir?: string; sqlite: boolean }): Promise<void> {
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  await chmod(opts.dataDir, 0o700);
  for (const name of PRIVATE_DIRS) {
    const dir = join(opts.dataDir, name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  }
  if (opts.blobDir && existsSync(opts.blobDir)) await chmod(opts.blobDir, 0o700);
  if (opts.sqlite) await (await open(join(opts.dataDir, 'mags.db'), 'a', 0o600)).close();
  for (const name of PRIVATE_FILES) {
    const file = join(opts.dataDir, name);
    if (existsSync(file)) await chmod(file, 0o600);
  }
}

/** Writes `~/.mags/config.json` for the admin when the user has none (needs the bound port). */
export async function writeClientConfig(opts: { home: string; token: string; apiUrl: string; log: Logger }): Promise<void> {
  const dir = join(opts.home, '.mags');
  const config = join(dir, 'config.json');
  if (existsSync(config)) return;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(config, JSON.stringify({ api_url: opts.apiUrl, api_token: opts.token }, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    opts.log.info({ file: config }, 'wrote the client configuration for this host');
  } catch (err) {
    opts.log.warn({ err, file: config }, 'could not write the client configuration; use the admin-token file instead');
  }
}
