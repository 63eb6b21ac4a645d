/**
 * The workspace manifest: one gzip stream of JSON lines, a header line and then one line per entry
 * in walk order (depth first, names sorted bytewise, a directory before its contents). Paths are
 * bytes: a name that is valid UTF-8 is stored as `p` (JSON escapes newlines and controls), any other
 * name as base64 `pb`, so every name Linux allows round-trips. Streams both ways: a manifest of
 * 100k files is never one string.
 */
import { isUtf8 } from 'node:buffer';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { Readable, type Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { WorkspaceSyncError } from './errors.js';

export const MANIFEST_FORMAT = 1;

/** Entry types: regular file, directory, symlink, overlayfs whiteout (a deleted lower path). */
export type EntryType = 'f' | 'd' | 'l' | 'w';

/** One chunk of a file: its sha256 (hex), or null for a run of zeros (a hole), and its length. */
export type Chunk = [hash: string | null, length: number];

/** One manifest line. Ids are sandbox-view ids; `i`/`ct` are the stat cache of the host that wrote it. */
export interface Entry {
  /** Relative path bytes (never stored in this form; see `p`/`pb` on the wire). */
  path: Buffer;
  t: EntryType;
  /** Permission bits (setuid/setgid stripped). */
  m: number;
  u: number;
  g: number;
  /** Size in bytes (files). */
  s: number;
  /** Modification time in ms. */
  mt: number;
  c?: Chunk[];
  /** Symlink target bytes. */
  link?: Buffer;
  /** Opaque directory (overlayfs `trusted.overlay.opaque=y`). */
  o?: boolean;
  /** Inode and ctime (ns, as text) when written: lets the next sync skip reading unchanged files. */
  i?: string;
  ct?: string;
}

/** The first line: what the version is. */
export interface ManifestHeader {
  v: number;
  ws: string;
  version: string;
  created_at: string;
  image_version?: string;
  files: number;
  bytes: number;
  chunk_bytes: number;
  /** `dev:ino` of the layer directory the stat cache belongs to. */
  layer?: string;
}

function bytesField(buf: Buffer, plain: string, b64: string): string {
  return isUtf8(buf) ? `"${plain}":${JSON.stringify(buf.toString('utf8'))}` : `"${b64}":"${buf.toString('base64')}"`;
}

/** The JSON line of an entry (no trailing newline). Built by hand: it runs once per file per sync. */
export function encodeEntry(e: Entry): string {
  let out = `{${bytesField(e.path, 'p', 'pb')},"t":"${e.t}","m":${e.m},"u":${e.u},"g":${e.g},"s":${e.s},"mt":${e.mt}`;
  if (e.c) out += `,"c":[${e.c.map(([h, n]) => (h === null ? `[null,${n}]` : `["${h}",${n}]`)).join(',')}]`;
  if (e.link) out += `,${bytesField(e.link, 'l', 'lb')}`;
  if (e.o) out += ',"o":1';
  if (e.i !== undefined) out += `,"i":"${e.i}"`;
  if (e.ct !== undefined) out += `,"ct":"${e.ct}"`;
  return `${out}}`;
}

/** True when two entries describe the same content and metadata (the stat cache is ignored). */
export function sameEntry(a: Entry, b: Entry): boolean {
  if (a.t !== b.t || a.m !== b.m || a.u !== b.u || a.g !== b.g || a.s !== b.s || a.mt !== b.mt || !!a.o !== !!b.o) return false;
  if (!!a.link !== !!b.link || (a.link && b.link && !a.link.equals(b.link))) return false;
  const ac = a.c ?? [];
  const bc = b.c ?? [];
  return ac.length === bc.length && ac.every((c, i) => c[0] === bc[i]![0] && c[1] === bc[i]![1]);
}

/** The path as text for logs, errors and change lists (invalid UTF-8 shown with replacement characters). */
export function showPath(path: Buffer): string {
  return path.toString('utf8');
}

const HASH = /^[0-9a-f]{64}$/;
const MAX_PATH_BYTES = 4096;
const MAX_ID = 0xffff_ffff;

function unsafe(msg: string, path?: Buffer): never {
  throw new WorkspaceSyncError('UNSAFE_MANIFEST', `manifest rejected: ${msg}`, { path: path && showPath(path) });
}

/** Throws UNSAFE_MANIFEST unless `path` is relative, has no empty, `.` or `..` segment and no NUL. */
export function checkRelPath(path: Buffer): void {
  if (path.length === 0) unsafe('an entry has an empty path');
  if (path.length > MAX_PATH_BYTES) unsafe(`a path is longer than ${MAX_PATH_BYTES} bytes`, path);
  if (path.includes(0)) unsafe('a path contains a NUL byte', path);
  if (path[0] === 0x2f) unsafe(`absolute path ${JSON.stringify(showPath(path))}`, path);
  for (const seg of splitPath(path)) {
    if (seg.length === 0) unsafe(`empty segment in ${JSON.stringify(showPath(path))}`, path);
    if (seg.length > 255) unsafe('a name is longer than 255 bytes', path);
    if ((seg.length === 1 && seg[0] === 0x2e) || (seg.length === 2 && seg[0] === 0x2e && seg[1] === 0x2e)) {
      unsafe(`"." or ".." segment in ${JSON.stringify(showPath(path))}`, path);
    }
  }
}

/** The segments of a slash-separated byte path. */
export function splitPath(path: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path[i] === 0x2f) {
      out.push(path.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

function int(v: unknown, max: number, what: string, path: Buffer): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) unsafe(`${what} is not a valid number`, path);
  return v;
}

function bytesOf(o: Record<string, unknown>, plain: string, b64: string): Buffer | undefined {
  if (typeof o[plain] === 'string') return Buffer.from(o[plain] as string, 'utf8');
  if (typeof o[b64] === 'string') return Buffer.from(o[b64] as string, 'base64');
  return undefined;
}

/**
 * Parses a line of a manifest this process wrote itself (the local cache) without the checks:
 * the previous version's entries are read on every sync.
 */
function decodeTrusted(line: string): Entry {
  const o = JSON.parse(line) as Record<string, unknown> & Entry;
  o.path = bytesOf(o, 'p', 'pb')!;
  o.link = bytesOf(o, 'l', 'lb');
  if (o.o) o.o = true;
  return o;
}

/** Parses and validates one entry line (throws UNSAFE_MANIFEST). */
export function decodeEntry(line: string): Entry {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch (err) {
    throw new WorkspaceSyncError('UNSAFE_MANIFEST', 'manifest rejected: a line is not JSON', { cause: err });
  }
  if (typeof o !== 'object' || o === null) unsafe('a line is not an object');
  const path = bytesOf(o, 'p', 'pb');
  if (!path) unsafe('an entry has no path');
  checkRelPath(path);
  const t = o.t;
  if (t !== 'f' && t !== 'd' && t !== 'l' && t !== 'w') unsafe(`unknown entry type ${JSON.stringify(t)}`, path);
  const e: Entry = {
    path, t,
    m: int(o.m, 0o7777, 'mode', path) & ~0o6000,
    u: int(o.u, MAX_ID, 'uid', path),
    g: int(o.g, MAX_ID, 'gid', path),
    s: int(o.s, Number.MAX_SAFE_INTEGER, 'size', path),
    mt: int(o.mt, Number.MAX_SAFE_INTEGER, 'mtime', path),
  };
  if (t === 'f') {
    if (!Array.isArray(o.c)) unsafe('a file has no chunk list', path);
    let sum = 0;
    e.c = (o.c as unknown[]).map((c) => {
      if (!Array.isArray(c) || c.length !== 2 || !(c[0] === null || (typeof c[0] === 'string' && HASH.test(c[0])))) unsafe('a chunk is malformed', path);
      sum += int(c[1], Number.MAX_SAFE_INTEGER, 'chunk length', path);
      return [c[0] as string | null, c[1] as number];
    });
    if (sum !== e.s) unsafe('chunk lengths do not add up to the file size', path);
  }
  if (t === 'l') {
    const link = bytesOf(o, 'l', 'lb');
    if (!link || link.length === 0 || link.includes(0) || link.length > MAX_PATH_BYTES) unsafe('a symlink target is missing or invalid', path);
    e.link = link;
  }
  if (o.o === 1) e.o = true;
  if (typeof o.i === 'string') e.i = o.i;
  if (typeof o.ct === 'string') e.ct = o.ct;
  return e;
}

function checkHeader(h: unknown): ManifestHeader {
  const o = h as ManifestHeader;
  if (typeof o !== 'object' || o === null || o.v !== MANIFEST_FORMAT || typeof o.version !== 'string' || typeof o.created_at !== 'string') {
    throw new WorkspaceSyncError('UNSAFE_MANIFEST', `manifest rejected: unknown header (format ${JSON.stringify(o?.v)}, this server reads ${MANIFEST_FORMAT})`);
  }
  return o;
}

/** Reads a (gzip) manifest stream: the header, then entries one at a time. */
export async function readManifest(
  source: Readable,
  onEntry?: (e: Entry) => void | Promise<void>,
  opts: { trusted?: boolean } = {},
): Promise<ManifestHeader> {
  const decode = opts.trusted ? decodeTrusted : decodeEntry;
  const gunzip = createGunzip();
  source.on('error', (err) => gunzip.destroy(err));
  const lines = createInterface({ input: source.pipe(gunzip), crlfDelay: Infinity });
  let header: ManifestHeader | undefined;
  try {
    for await (const line of lines) {
      if (line === '') continue;
      if (!header) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch (err) {
          throw new WorkspaceSyncError('UNSAFE_MANIFEST', 'manifest rejected: the header is not JSON', { cause: err });
        }
        header = checkHeader(parsed);
        if (!onEntry) break;
        continue;
      }
      await onEntry?.(decode(line));
    }
  } finally {
    lines.close();
    source.destroy();
  }
  if (!header) throw new WorkspaceSyncError('UNSAFE_MANIFEST', 'manifest rejected: it is empty');
  return header;
}

/** Writes lines to a stream in batches of ~256 KiB, waiting when it is full (back-pressure). */
export class LineWriter {
  private pending: string[] = [];
  private size = 0;
  constructor(private readonly out: Writable) {}

  async add(line: string): Promise<void> {
    this.pending.push(line);
    this.size += line.length + 1;
    if (this.size >= 256 * 1024) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const text = `${this.pending.join('\n')}\n`;
    this.pending = [];
    this.size = 0;
    if (!this.out.write(text)) await once(this.out, 'drain');
  }
}

/** A readable of the given buffers, then the rest of a stream (header member + body member). */
export function concatStreams(head: Buffer, rest: Readable): Readable {
  return Readable.from((async function* () {
    yield head;
    for await (const chunk of rest) yield chunk as Buffer;
  })());
}
