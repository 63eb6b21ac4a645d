import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
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
