/** IPv4 address arithmetic and the choice of a sandbox subnet that clashes with nothing on the host. */
import { createHash } from 'node:crypto';

export interface Cidr {
  /** Network address as an unsigned 32-bit integer. */
  base: number;
  prefix: number;
}

export function ipToInt(ip: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) throw new Error(`not an IPv4 address: ${ip}`);
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function isIPv4(s: string): boolean {
  try {
    ipToInt(s);
    return true;
  } catch {
    return false;
  }
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses `a.b.c.d/n` (or a bare address = /32) and normalises it to its network address. */
export function parseCidr(s: string): Cidr {
  const [ip, len] = s.split('/');
  const prefix = len === undefined ? 32 : Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new Error(`bad prefix length in ${s}`);
  return { base: (ipToInt(ip!) & mask(prefix)) >>> 0, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.base)}/${c.prefix}`;
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function contains(c: Cidr, ip: number): boolean {
  return ((ip & mask(c.prefix)) >>> 0) === c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & mask(p)) >>> 0) === ((b.base & mask(p)) >>> 0);
}

/** The pool default subnets are carved from: 10.200.0.0/13 = 128 subnets of /20 (4093 sandboxes each). */
export const DEFAULT_POOL = '10.200.0.0/13';
export const DEFAULT_PREFIX = 20;

/**
 * Picks the sandbox subnet: `preferred` (the one used last time) when it is still free, else the
 * /20 of the pool that the instance name hashes to, else the next free one. "Free" means it overlaps
 * no route or address of the host (`taken`) and contains none of the resolvers.
 */
export function chooseSubnet(instance: string, taken: Cidr[], avoid: number[], preferred?: Cidr): Cidr {
  const free = (c: Cidr): boolean => !taken.some((t) => overlaps(t, c)) && !avoid.some((ip) => contains(c, ip));
  if (preferred && free(preferred)) return preferred;
  const pool = parseCidr(DEFAULT_POOL);
  const count = 2 ** (DEFAULT_PREFIX - pool.prefix);
  const start = createHash('sha256').update(instance).digest().readUInt32BE(0) % count;
  for (let i = 0; i < count; i++) {
    const slot = (start + i) % count;
    const c = { base: (pool.base + slot * 2 ** (32 - DEFAULT_PREFIX)) >>> 0, prefix: DEFAULT_PREFIX };
    if (free(c)) return c;
  }
  throw new Error(
    `no free /${DEFAULT_PREFIX} left in ${DEFAULT_POOL} for the sandbox bridge: remove unused routes or set a subnet explicitly`,
  );
}
