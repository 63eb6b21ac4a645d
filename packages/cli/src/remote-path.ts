/**
 * `<job>:<path>` arguments of `mags cp`, `mags ls` and `mags cat`: a job name or request id, a
 * colon, and a path inside the job's sandbox (absolute, or relative to /root); `ws:<workspace>:<path>`
 * names a stored workspace instead (read-only). An argument that
 * starts with `/` or `.`, or has a `/` before its first colon, is a local path (as in `docker cp`).
 */
import { posix } from 'node:path';
import { usageError } from './exit-codes.js';

export interface RemotePath {
  job: string;
  /** Absolute path inside the sandbox. */
  path: string;
  /** Set for `ws:<workspace>:<path>`: a stored workspace (read-only), `job` is then empty. */
  workspace?: string;
}

/** The job and path of `arg`, or undefined when `arg` is a local path. */
export function parseRemote(arg: string): RemotePath | undefined {
  const colon = arg.indexOf(':');
  if (colon <= 0 || arg.startsWith('/') || arg.startsWith('.') || arg.slice(0, colon).includes('/')) return undefined;
  let job = arg.slice(0, colon);
  let rest = arg.slice(colon + 1);
  let workspace: string | undefined;
  const second = rest.indexOf(':');
  if (job === 'ws' && second > 0 && !rest.slice(0, second).includes('/')) {
    workspace = rest.slice(0, second);
    rest = rest.slice(second + 1);
    job = '';
  }
  const path = rest === '' ? '/root' : rest.startsWith('/') ? rest : posix.join('/root', rest);
  return { job, path, ...(workspace ? { workspace } : {}) };
}

/** Like parseRemote, but a local path is a usage error naming the expected form. */
export function requireRemote(arg: string, command: string): RemotePath {
  const r = parseRemote(arg);
  if (!r) throw usageError(`${command}: expected <job>:<path>, got ${JSON.stringify(arg)}`, `e.g. mags ${command} myjob:/root/app.py`);
  return r;
}
