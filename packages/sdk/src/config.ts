import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** Where the client looks when no option or env var names the server. */
export const DEFAULT_API_URL = 'http://127.0.0.1:8090';

/** The saved client settings (`~/.mags/config.json`), as `mags login` writes them. */
export interface ClientConfigFile {
  api_url?: string;
  api_token?: string;
  [key: string]: unknown;
}

/** Path of the client config file: `$HOME/.mags/config.json`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.HOME || homedir(), '.mags', 'config.json');
}

/** Reads the config file; missing or unreadable files count as empty. Accepts `apiUrl`/`apiToken` too. */
export function readConfigFile(path: string = configPath()): ClientConfigFile {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch {
    return {};
  }
  try {
    const parsed = JSON.parse(raw) as Record<string, unknown>;
    if (!parsed || typeof parsed !== 'object') return {};
    const out: ClientConfigFile = { ...parsed };
    const url = parsed.api_url ?? parsed.apiUrl;
    const token = parsed.api_token ?? parsed.apiToken;
    if (typeof url === 'string' && url) out.api_url = url;
    if (typeof token === 'string' && token) out.api_token = token;
    return out;
  } catch {
    return {};
  }
}

/**
 * Writes the config file with mode 0600 (directory 0700), atomically (temp file + rename), keeping
 * keys it does not know.
 */
export function writeConfigFile(values: ClientConfigFile, path: string = configPath()): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const current = readConfigFile(path);
  const merged: Record<string, unknown> = { ...current, ...values };
  delete merged.apiUrl;
  delete merged.apiToken;
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(merged, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Removes the saved token (and keeps the URL); returns whether a token was there. */
export function removeSavedToken(path: string = configPath()): boolean {
  const current = readConfigFile(path);
  if (!current.api_token) return false;
  const rest: Record<string, unknown> = { ...current };
  delete rest.api_token;
  delete rest.apiToken;
  if (Object.keys(rest).length === 0) {
    rmSync(path, { force: true });
  } else {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(rest, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, path);
  }
  return true;
}

export type TokenSource = 'option' | 'MAGS_API_TOKEN' | 'MAGS_TOKEN' | 'config' | 'none';
export type UrlSource = 'option' | 'MAGS_API_URL' | 'config' | 'default';

export interface ResolvedSettings {
  apiUrl: string;
  apiToken: string | undefined;
  tokenSource: TokenSource;
  urlSource: UrlSource;
  configPath: string;
}

/**
 * Resolves URL and token: token = option > MAGS_API_TOKEN > MAGS_TOKEN > config `api_token`;
 * URL = option > MAGS_API_URL > config `api_url` > http://127.0.0.1:8090.
 */
export function resolveSettings(
  opts: { apiUrl?: string; apiToken?: string; configPath?: string } = {},
  env: NodeJS.ProcessEnv = process.env,
): ResolvedSettings {
  const path = opts.configPath ?? configPath(env);
  let file: ClientConfigFile | undefined;
  const fileConfig = (): ClientConfigFile => (file ??= readConfigFile(path));

  let apiToken: string | undefined;
  let tokenSource: TokenSource = 'none';
  if (opts.apiToken) [apiToken, tokenSource] = [opts.apiToken, 'option'];
  else if (env.MAGS_API_TOKEN) [apiToken, tokenSource] = [env.MAGS_API_TOKEN, 'MAGS_API_TOKEN'];
  else if (env.MAGS_TOKEN) [apiToken, tokenSource] = [env.MAGS_TOKEN, 'MAGS_TOKEN'];
  else if (fileConfig().api_token) [apiToken, tokenSource] = [fileConfig().api_token, 'config'];

  let apiUrl: string;
  let urlSource: UrlSource;
  if (opts.apiUrl) [apiUrl, urlSource] = [opts.apiUrl, 'option'];
  else if (env.MAGS_API_URL) [apiUrl, urlSource] = [env.MAGS_API_URL, 'MAGS_API_URL'];
  else if (fileConfig().api_url) [apiUrl, urlSource] = [fileConfig().api_url as string, 'config'];
  else [apiUrl, urlSource] = [DEFAULT_API_URL, 'default'];

  return { apiUrl: normalizeApiUrl(apiUrl), apiToken: apiToken?.trim(), tokenSource, urlSource, configPath: path };
}

/**
 * The server's base URL without trailing slashes and without a trailing `/api/v1`, so
 * `http://h:8090`, `http://h:8090/` and `http://h:8090/api/v1/` all name the same server.
 */
export function normalizeApiUrl(url: string): string {
  let out = url.trim().replace(/\/+$/, '');
  if (out.endsWith('/api/v1')) out = out.slice(0, -'/api/v1'.length).replace(/\/+$/, '');
  return out;
}

/** Why `url` cannot be a server URL (not parseable, not http(s), no host); undefined when it can. */
export function apiUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `scheme ${parsed.protocol} is not http: or https:`;
  if (!parsed.hostname) return 'no host';
  return undefined;
}
