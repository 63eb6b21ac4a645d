import { createHash, randomBytes, randomUUID } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A new API token: `mags_` + 40 random base62 characters (rejection sampling, no modulo bias). */
export function generateToken(): string {
  let out = 'mags_';
  while (out.length < 45) {
    for (const b of randomBytes(64)) {
      if (b < 248 && out.length < 45) out += BASE62[b % 62];
    }
  }
  return out;
}

/** sha256 hex of a token: the only form a token is stored in. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function newId(): string {
  return randomUUID();
}
