import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { AppError } from '../services/errors.js';

/** Ranges a webhook may not reach unless the admin allows private targets. */
const BLOCKED = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  BLOCKED.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
  ['100::', 64], // discard
] as const) {
  BLOCKED.addSubnet(net, bits, 'ipv6');
}

/** The 16 bytes of an IPv6 address (any textual form, with or without a dotted IPv4 tail). */
function ipv6Bytes(addr: string): number[] {
  let a = addr.toLowerCase().replace(/%.*$/, '');
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted) {
    tail.push(...dotted[1]!.split('.').map(Number));
    a = a.slice(0, -dotted[1]!.length) + '0:0';
  }
  const [head, rest] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':').filter((x) => x !== '') : [];
  const r = rest !== undefined ? rest.split(':').filter((x) => x !== '') : [];
  const groups = [...h, ...Array(8 - h.length - r.length).fill('0'), ...r].map((g) => parseInt(g, 16));
  const bytes = groups.flatMap((g) => [g >> 8, g & 255]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/**
 * The IPv4 address an IPv6 address stands for: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
 * (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d); undefined for other IPv6 addresses.
 */
export function embeddedIpv4(addr: string): string | undefined {
  const b = ipv6Bytes(addr);
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  const v4 = b.slice(12).join('.');
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return v4;
  if (zeros(0, 12) && !(b[12] === 0 && b[13] === 0 && b[14] === 0 && (b[15] ?? 0) <= 1)) return v4;
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) return v4;
  return undefined;
}

/** Why this address may not be a webhook target, or undefined when it may. */
export function refusedAddress(addr: string, own: ReadonlySet<string> = ownAddresses()): string | undefined {
  const family = isIP(addr);
  if (family === 0) return 'is not an IP address';
  if (family === 6) {
    const v4 = embeddedIpv4(addr);
    if (v4) {
      const why = refusedAddress(v4, own);
      return why && `maps to ${v4}, which ${why}`;
    }
  }
  if (BLOCKED.check(addr, family === 4 ? 'ipv4' : 'ipv6')) return 'is a loopback, private, link-local, CGNAT, multicast or unspecified address';
  if (own.has(normal(addr))) return "is one of this server's own addresses";
  return undefined;
}

function normal(addr: string): string {
  return isIP(addr) === 6 ? ipv6Bytes(addr).join(',') : addr;
}

/** This host's interface addresses (normalised). */
export function ownAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(normal(a.address));
  return out;
}

/** A URL checked for delivery: where to connect (the resolved, allowed address) and what to send as Host. */
export interface ResolvedTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

/** Parses a webhook URL: http(s), no credentials; WEBHOOK_TARGET_REFUSED naming the field otherwise. */
export function parseTargetUrl(field: string, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AppError('WEBHOOK_TARGET_REFUSED', `${field}: "${raw.slice(0, 200)}" is not a URL`, 'Use an http:// or https:// URL.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AppError('WEBHOOK_TARGET_REFUSED', `${field}: only http and https URLs are allowed, not ${url.protocol}`);
  if (url.username || url.password) throw new AppError('WEBHOOK_TARGET_REFUSED', `${field}: URLs with credentials are not allowed`, 'Verify deliveries with the webhook signature instead.');
  if (raw.length > 2048) throw new AppError('WEBHOOK_TARGET_REFUSED', `${field}: the URL is longer than 2048 characters`);
  return url;
}

/**
 * Resolves a webhook URL and refuses it when any of its addresses is loopback, private,
 * link-local, CGNAT, multicast, unspecified (or an IPv4-mapped form of those) or this server's
 * own, unless `allowPrivate`. The caller connects to the returned address, so a DNS answer that
 * changes between this check and the connection cannot redirect the request.
 */
export async function resolveTarget(field: string, raw: string, allowPrivate: boolean): Promise<ResolvedTarget> {
  const url = parseTargetUrl(field, raw);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addrs: { address: string; family: number }[];
  if (isIP(host)) addrs = [{ address: host, family: isIP(host) }];
  else {
    try {
      addrs = await lookup(host, { all: true, verbatim: true });
    } catch (err) {
      throw new AppError('WEBHOOK_TARGET_REFUSED', `${field}: the host ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'DNS error'})`);
    }
  }
  if (addrs.length === 0) throw new AppError('WEBHOOK_TARGET_REFUSED', `${field}: the host ${host} has no address`);
  if (!allowPrivate) {
    const own = ownAddresses();
    for (const a of addrs) {
      const why = refusedAddress(a.address, own);
      if (why) {
        throw new AppError('WEBHOOK_TARGET_REFUSED', `${field}: ${host} resolves to ${a.address}, which ${why}`, 'Use a public address, or ask the admin to set MAGS_WEBHOOK_ALLOW_PRIVATE=1.');
      }
    }
  }
  return { url, address: addrs[0]!.address, family: addrs[0]!.family === 6 ? 6 : 4 };
}

/** What one delivery attempt got back. */
export interface PostResult {
  status: number | null;
  /** The answer body, at most `maxBodyBytes`. */
  body: string;
  error: string | null;
}

/**
 * POSTs a JSON body to a resolved target, connecting to its checked address (the URL's host is
 * still sent as Host and used for TLS). No redirects are followed; the whole exchange is limited
 * to `timeoutMs`; at most `maxBodyBytes` of the answer are read.
 */
export function postJson(t: ResolvedTarget, headers: Record<string, string>, body: string, timeoutMs: number, maxBodyBytes: number): Promise<PostResult> {
  return new Promise((resolve) => {
    const mod = t.url.protocol === 'https:' ? https : http;
    let settled = false;
    const done = (r: PostResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const req = mod.request(
      t.url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'mags-webhooks/1', ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: (_host, opts, cb) => {
          if ((opts as { all?: boolean }).all) (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: t.address, family: t.family }]);
          else cb(null, t.address, t.family);
        },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < maxBodyBytes) chunks.push(c.subarray(0, maxBodyBytes - size));
          size += c.length;
          if (size >= maxBodyBytes) done({ status: res.statusCode ?? null, body: Buffer.concat(chunks).toString('utf8'), error: null });
        });
        res.on('end', () => done({ status: res.statusCode ?? null, body: Buffer.concat(chunks).toString('utf8'), error: null }));
        res.on('error', (err) => done({ status: res.statusCode ?? null, body: Buffer.concat(chunks).toString('utf8'), error: err.message }));
      },
    );
    const timer = setTimeout(() => done({ status: null, body: '', error: `no answer within ${timeoutMs} ms` }), timeoutMs);
    req.on('error', (err) => done({ status: null, body: '', error: err.message }));
    req.end(body);
  });
}
