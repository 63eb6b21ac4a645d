import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { BlobStoreError, InvalidBlobKeyError, type BlobStore } from '../../src/storage/blobs/index.js';

const KIB = 1024;
const MIB = 1024 * KIB;

/** sha256 and length of everything a stream yields. */
export async function digest(stream: Readable): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

export function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/**
 * A streamed body of `size` pseudo-random bytes made 64 KiB at a time (never held whole); `sha256()`
 * is the hash of what it emitted. `failAfter` makes it error once that many bytes went out.
 */
export function patternBody(size: number, opts: { failAfter?: number } = {}) {
  const base = randomBytes(64 * KIB);
  const hash = createHash('sha256');
  let sent = 0;
  async function* chunks() {
    for (let i = 0; sent < size; i++) {
      if (opts.failAfter !== undefined && sent >= opts.failAfter) throw new Error('source failed on purpose');
      const chunk = Buffer.from(base.subarray(0, Math.min(base.length, size - sent)));
      if (chunk.length >= 8) chunk.writeBigUInt64BE(BigInt(i), 0);
      hash.update(chunk);
      sent += chunk.length;
      yield chunk;
    }
  }
  return { stream: Readable.from(chunks(), { objectMode: false }), sha256: () => hash.digest('hex'), sent: () => sent };
}

async function getDigest(store: BlobStore, key: string) {
  const stream = await store.get(key);
  return stream && digest(stream);
}

async function listAll(store: BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of store.list(prefix)) keys.push(key);
  return keys.sort();
}

/** Runs `fn` on every item with at most `limit` at once. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

/** Keys that every driver must refuse, each for a different rule. */
export const HOSTILE_KEYS = [
  '', '/abs', '/', 'a/', 'a//b', '..', '../x', 'a/../../x', 'a/./b', '.', 'a\\b', '..\\x', 'nul\0byte', 'tab\tkey',
  'new\nline', `${'a'.repeat(256)}`, `${'a/'.repeat(600)}a`, 'x/.blobtmp.1.abc', '\uD800lone',
];

/** Hostile list prefixes (a partial last segment is fine, complete ones follow the key rules). */
export const HOSTILE_PREFIXES = ['/', '/abs', '../', 'a/../', 'a//', 'a\\', 'x\0'];

/**
 * The blob store conformance suite: the same behaviour from every driver. `open` returns a store
 * that the suite closes at the end; keys live under a fresh random prefix.
 */
export function blobStoreConformance(name: string, open: () => Promise<BlobStore>, opts: { largeBytes?: number; manyKeys?: number } = {}) {
  describe(`blob store conformance: ${name}`, () => {
    let store: BlobStore;
    const ns = `t-${randomUUID().slice(0, 8)}`;
    const k = (key: string) => `${ns}/${key}`;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store?.close();
    });

    it('round trips empty, small and all-byte-values blobs, as buffers and as streams', async () => {
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const cases: [string, Buffer][] = [['empty', Buffer.alloc(0)], ['small', Buffer.from('hello blob\n')], ['binary', all]];
      for (const [key, body] of cases) {
        await store.put(k(`buf/${key}`), body);
        await store.put(k(`stream/${key}`), Readable.from([body]), { size: body.length });
        for (const prefix of ['buf', 'stream']) {
          assert.deepEqual(await getDigest(store, k(`${prefix}/${key}`)), { sha256: sha256(body), size: body.length }, `${prefix}/${key}`);
          assert.equal((await store.head(k(`${prefix}/${key}`)))?.size, body.length);
        }
      }
      const got = await store.get(k('buf/binary'));
      assert.ok(got);
      const bytes = Buffer.concat(await got.toArray());
      assert.deepEqual([...bytes], [...all], 'every byte value survives');
    });

    it('streams a multi-MiB blob in and out intact', async () => {
      const size = opts.largeBytes ?? 12 * MIB + 123;
      const body = patternBody(size);
      await store.put(k('large'), body.stream);
      assert.deepEqual(await getDigest(store, k('large')), { sha256: body.sha256(), size });
      assert.equal((await store.head(k('large')))?.size, size);
    });

    it('overwrites a key with the new value', async () => {
      await store.put(k('over'), Buffer.from('first value, the longer one'));
      await store.put(k('over'), Buffer.from('second'));
      assert.deepEqual(await getDigest(store, k('over')), { sha256: sha256(Buffer.from('second')), size: 6 });
      assert.equal((await store.head(k('over')))?.size, 6);
    });

    it('answers undefined for a missing key', async () => {
      assert.equal(await store.get(k('missing')), undefined);
      assert.equal(await store.head(k('missing')), undefined);
      assert.equal(await store.get(k('missing/deeper/still')), undefined);
      assert.equal(await store.get(k('missing')), undefined, 'and keeps doing so');
    });

    it('head gives size and a recent modification time', async () => {
      const before = Date.now();
      await store.put(k('head'), Buffer.alloc(1000, 7));
      const head = await store.head(k('head'));
      assert.equal(head?.size, 1000);
      assert.ok(head?.lastModified instanceof Date, 'lastModified is a Date');
      // S3 keeps whole seconds; allow clock skew with the backend.
      assert.ok(Math.abs(head.lastModified.getTime() - before) < 60_000, `lastModified ${head.lastModified.toISOString()} is recent`);
    });

    it('lists by string prefix and keeps unicode keys exact', async () => {
      const keys = ['ls/a/1', 'ls/a/2', 'ls/ab', 'ls/b/x/y', 'ls/ünï/cödé file (1).txt', 'ls/~tilde+plus=eq@at'];
      for (const key of keys) await store.put(k(key), Buffer.from(key));
      assert.deepEqual(await listAll(store, k('ls/')), keys.map(k).sort());
      assert.deepEqual(await listAll(store, k('ls/a')), [k('ls/a/1'), k('ls/a/2'), k('ls/ab')]);
      assert.deepEqual(await listAll(store, k('ls/a/')), [k('ls/a/1'), k('ls/a/2')]);
      assert.deepEqual(await listAll(store, k('ls/b/x/y')), [k('ls/b/x/y')]);
      assert.deepEqual(await listAll(store, k('ls/nothing')), []);
      assert.deepEqual(await listAll(store, k('nothing/')), []);
      const everything = await listAll(store, '');
      for (const key of keys) assert.ok(everything.includes(k(key)), `'' lists ${key}`);
      const got = await store.get(k('ls/ünï/cödé file (1).txt'));
      assert.equal(got && Buffer.concat(await got.toArray()).toString(), 'ls/ünï/cödé file (1).txt');
    });

    const many = opts.manyKeys ?? 1001;
    it(`lists more than one page of keys (${many}; S3 pages hold 1000)`, async () => {
      const keys = Array.from({ length: many }, (_, i) => k(`many/${String(i).padStart(4, '0')}`));
      await pool(keys, 16, (key) => store.put(key, Buffer.from(key)));
      const listed = await listAll(store, k('many/'));
      assert.equal(listed.length, many);
      assert.deepEqual(listed, keys);
    });

    it('deletes idempotently', async () => {
      await store.put(k('del/one'), Buffer.from('x'));
      await store.delete(k('del/one'));
      assert.equal(await store.get(k('del/one')), undefined);
      assert.equal(await store.head(k('del/one')), undefined);
      assert.deepEqual(await listAll(store, k('del/')), []);
      await store.delete(k('del/one'));
      await store.delete(k('del/never/was'));
      await store.put(k('del/one'), Buffer.from('again'));
      assert.equal((await store.head(k('del/one')))?.size, 5, 'a deleted key can be written again');
    });

    it('concurrent puts of one key end with one complete value; readers never see a partial one', async () => {
      const size = 2 * MIB + 17;
      const bodies = Array.from({ length: 6 }, () => patternBody(size));
      let reading = true;
      const seen = new Set<string>();
      const reader = (async () => {
        while (reading) {
          const d = await getDigest(store, k('race'));
          if (d) seen.add(`${d.sha256}:${d.size}`);
        }
      })();
      try {
        await Promise.all(bodies.map((b) => store.put(k('race'), b.stream)));
      } finally {
        reading = false;
        await reader;
      }
      const valid = new Set(bodies.map((b) => `${b.sha256()}:${size}`));
      const final = await getDigest(store, k('race'));
      assert.ok(final && valid.has(`${final.sha256}:${final.size}`), 'the final value is one of the written ones, whole');
      for (const s of seen) assert.ok(valid.has(s), `a reader saw a value nobody wrote in full: ${s}`);
    });

    it('a failed put (source error, wrong size, abort) leaves the previous value', async () => {
      await store.put(k('keep'), Buffer.from('previous'));
      const failing = patternBody(6 * MIB, { failAfter: 3 * MIB });
      await assert.rejects(store.put(k('keep'), failing.stream), /source failed on purpose/);
      await assert.rejects(store.put(k('keep'), Readable.from([Buffer.from('12345')]), { size: 4 }), BlobStoreError);
      await assert.rejects(store.put(k('keep'), Buffer.from('12345'), { size: 6 }), BlobStoreError);
      const ac = new AbortController();
      const slow = Readable.from((async function* () {
        yield Buffer.alloc(1000);
        ac.abort();
        await new Promise((r) => setTimeout(r, 50));
        yield Buffer.alloc(1000);
      })());
      await assert.rejects(store.put(k('keep'), slow, { signal: ac.signal }), { name: 'AbortError' });
      assert.deepEqual(await getDigest(store, k('keep')), { sha256: sha256(Buffer.from('previous')), size: 8 });
      await assert.rejects(store.put(k('never'), patternBody(MIB, { failAfter: 1000 }).stream), /source failed on purpose/);
      assert.equal(await store.head(k('never')), undefined, 'a failed first put leaves no blob');
      assert.deepEqual(await listAll(store, k('never')), []);
    });

    it('reads byte ranges', async () => {
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await store.put(k('range'), all);
      const read = async (offset: number, length?: number) => {
        const s = await store.get(k('range'), { range: { offset, length } });
        assert.ok(s, 'a range of an existing blob is a stream');
        return [...Buffer.concat(await s.toArray())];
      };
      assert.deepEqual(await read(10, 20), [...all.subarray(10, 30)]);
      assert.deepEqual(await read(0, 1), [0]);
      assert.deepEqual(await read(250), [...all.subarray(250)]);
      assert.deepEqual(await read(250, 100), [...all.subarray(250)], 'cut at the end');
      assert.deepEqual(await read(255, 1), [255]);
      assert.deepEqual(await read(256), [], 'starting at the end is empty');
      assert.deepEqual(await read(1000, 5), []);
      assert.deepEqual(await read(5, 0), []);
      assert.equal(await store.get(k('range-missing'), { range: { offset: 0, length: 5 } }), undefined);
      await assert.rejects(store.get(k('range'), { range: { offset: -1 } }), RangeError);
      await assert.rejects(store.get(k('range'), { range: { offset: 0, length: 1.5 } }), RangeError);
    });

    it('refuses hostile keys and prefixes in every method', async () => {
      for (const key of HOSTILE_KEYS) {
        const is = (err: unknown) => err instanceof InvalidBlobKeyError && err.message.startsWith('invalid blob key');
        await assert.rejects(store.put(key, Buffer.from('x')), is, `put ${JSON.stringify(key)}`);
        await assert.rejects(store.get(key), is, `get ${JSON.stringify(key)}`);
        await assert.rejects(store.head(key), is, `head ${JSON.stringify(key)}`);
        await assert.rejects(store.delete(key), is, `delete ${JSON.stringify(key)}`);
      }
      for (const prefix of HOSTILE_PREFIXES) {
        await assert.rejects(listAll(store, prefix), InvalidBlobKeyError, `list ${JSON.stringify(prefix)}`);
      }
      const everything = await listAll(store, '');
      assert.ok(everything.every((key) => !key.includes('..') && !key.includes('\\')), 'nothing hostile was stored');
    });
  });
}
