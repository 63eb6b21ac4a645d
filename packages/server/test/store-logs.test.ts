import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Migrator, sql } from 'kysely';
import { pino } from 'pino';
import { silentLogger } from '../src/logger.js';
import { JobLogs } from '../src/services/job-logs.js';
import { newId } from '../src/services/tokens.js';
import { MAX_LINE_BYTES, nextLine } from '../src/storage/logs/lines.js';
import type { LogChunk, LogLine, LogPosition, LogStore } from '../src/storage/logs/store.js';
import { decodeLogText, encodeLogText } from '../src/storage/logs/text-encoding.js';
import { migrateToLatest, migrations, openDatabase } from '../src/storage/metadata/db.js';
import type { User } from '../src/storage/metadata/store.js';
import type { Stores } from '../src/storage/stores.js';
import { STORE_BACKENDS, job, type StoreBackend } from './helpers/stores.js';

/** Whether a string survives UTF-8 (no lone surrogates). */
const wellFormed = (s: string) => Buffer.from(s, 'utf8').toString('utf8') === s;

/** Messages the old line store (migration 011 converts its rows) gave back exactly. */
const HOSTILE: ReadonlyArray<[string, string]> = [
  ['NUL alone', '\0'],
  ['NUL inside', 'a\0b\0\0c'],
  ['NUL and backslashes', '\\0 \0 \\\\0 \\u0000 \\'],
  ['lone high surrogate', 'x\uD800y'],
  ['lone low surrogate at the end', 'x\uDC00'],
  ['reversed pair', '\uDE42\uD83D'],
  ['a valid pair beside a lone one', '🙂\uD83D'],
  ['invalid UTF-8 decoded (U+FFFD)', Buffer.from([0x61, 0xff, 0xfe, 0xc3, 0x28, 0x62]).toString('utf8')],
  ['U+FFFD with NUL', '\uFFFD\0\uFFFD'],
  ['plain text that looks escaped', 'C:\\temp\\0 \\u00e9'],
  ['empty', ''],
  ['control characters and RTL override', '\x01\x1b[31mred\x1b[0m\u202e'],
];

/** Deterministic pseudo-random bytes (xorshift), with newlines, NUL and broken UTF-8 mixed in. */
function noise(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const r = (x >>> 0) % 100;
    out[i] = r < 8 ? 10 : r < 10 ? 0 : r < 14 ? 0xc3 : r < 16 ? 0xff : 0x61 + (r % 26);
  }
  return out;
}

/** Lines of one stream's bytes cut whole (the reference the incremental cutting must match). */
function cutWhole(buf: Buffer): string[] {
  const lines: string[] = [];
  for (let pos = 0; ; ) {
    const cut = nextLine(buf, pos, true);
    if (!cut) return lines;
    lines.push(buf.toString('utf8', pos, cut.end));
    pos = cut.next;
  }
}

describe('log text encoding', () => {
  it('leaves lines without NUL or lone surrogates as they are', () => {
    for (const s of ['', 'plain', 'C:\\temp\\0', '🙂 名前 \uFFFD', 'x'.repeat(1000)]) {
      assert.deepEqual(encodeLogText(s), { text: s, escaped: false });
    }
  });

  it('escapes NUL and lone surrogates into well-formed text without NUL', () => {
    for (const [what, s] of HOSTILE) {
      const { text, escaped } = encodeLogText(s);
      if (!escaped) continue;
      assert.equal(text.includes('\0'), false, what);
      assert.equal(wellFormed(text), true, what);
      assert.equal(decodeLogText(text, true), s, what);
    }
  });

  it('round-trips random UTF-16 (surrogates, NUL, backslashes) exactly', () => {
    const alphabet = ['\0', '\\', '0', 'u', 'a', '\uD800', '\uDBFF', '\uDC00', '\uDFFF', '\uFFFD', '🙂', 'é'];
    for (let n = 0; n < 2000; n++) {
      let s = '';
      const len = Math.floor(Math.random() * 12);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
      const { text, escaped } = encodeLogText(s);
      assert.equal(decodeLogText(text, escaped), s, JSON.stringify(s));
      assert.equal(text.includes('\0') || !wellFormed(text), false, JSON.stringify(s));
    }
  });
});

/** The same conformance tests of the log store for every database driver. */
for (const backend of STORE_BACKENDS)
  describe(`log store on ${backend.name}`, () => {
    let db: StoreBackend;
    let stores: Stores;
    let logs: LogStore;
    let user: User;
    const newJob = async () => {
      const j = job(user.id);
      await stores.jobs.insertJob(j);
      return j.request_id;
    };
    /** Every stored chunk of a job, in order. */
    const allChunks = async (id: string, stream?: LogChunk['stream']) => {
      const out: LogChunk[] = [];
      for (let after = 0; ; ) {
        const page = await logs.readChunks(id, after, 50, stream);
        if (page.length === 0) return out;
        out.push(...page);
        after = page.at(-1)!.chunk;
      }
    };
    const allLines = async (id: string, pageSize = 1000) => {
      const out: LogLine[] = [];
      for (let after = 0; ; ) {
        const page = await logs.read(id, after, pageSize);
        if (page.length === 0) return out;
        out.push(...page);
        after = page.at(-1)!.seq;
      }
    };
    before(async () => {
      db = await backend.open();
      stores = db.stores;
      logs = stores.logs;
      user = { id: newId(), name: 'logs', admin: false, created_at: new Date().toISOString() };
      await stores.users.createUser(user);
    });
    after(async () => {
      await db?.cleanup();
    });

    it('binary output written in odd pieces on two streams comes back byte for byte, and its lines match the live ones', async () => {
      const id = await newJob();
      const jl = new JobLogs(logs, silentLogger(), { flushIntervalMs: 10_000, chunkBytes: 997 });
      await jl.open(id);
      const out = noise(60_000, 7);
      const err = noise(20_000, 11);
      const live: LogLine[] = [];
      let o = 0;
      let e = 0;
      for (let i = 1; o < out.length || e < err.length; i++) {
        const n = (i * 7919) % 3001;
        if (o < out.length) live.push(...jl.write(id, 'stdout', out.subarray(o, (o += n))));
        if (i % 3 === 0 && e < err.length) live.push(...jl.write(id, 'stderr', err.subarray(e, (e += n >> 1))));
        if (i % 5 === 0) await jl.flush();
      }
      jl.endStreams(id);
      await jl.flush();
      const bytesOf = async (s: LogChunk['stream']) => Buffer.concat((await allChunks(id, s)).map((c) => c.data));
      assert.ok((await bytesOf('stdout')).equals(out), 'stdout bytes');
      assert.ok((await bytesOf('stderr')).equals(err), 'stderr bytes');
      const endLines = (await jl.read(id, live.at(-1)?.seq ?? 0, 100)).length;
      assert.ok(endLines <= 2);
      const stored = await allLines(id, 333);
      assert.deepEqual(stored.slice(0, live.length).map((l) => [l.seq, l.stream, l.message]), live.map((l) => [l.seq, l.stream, l.message]));
      assert.deepEqual(stored.map((l) => l.seq), stored.map((_, i) => i + 1), 'seq 1..n without gaps');
      assert.deepEqual(stored.filter((l) => l.stream === 'stdout').map((l) => l.message), cutWhole(out));
      assert.deepEqual(stored.filter((l) => l.stream === 'stderr').map((l) => l.message), cutWhole(err));
      assert.equal(await logs.maxSeq(id), stored.length);
    });

    it('lines longer than MAX_LINE_BYTES are cut at UTF-8 boundaries the same way live and stored', async () => {
      const id = await newJob();
      const jl = new JobLogs(logs, silentLogger(), { flushIntervalMs: 10_000 });
      await jl.open(id);
      const data = Buffer.from('é'.repeat(MAX_LINE_BYTES) + '\nshort\n' + 'x'.repeat(MAX_LINE_BYTES + 5), 'utf8');
      const live: LogLine[] = [];
      for (let i = 0; i < data.length; i += 10_007) live.push(...jl.write(id, 'stdout', data.subarray(i, i + 10_007)));
      jl.endStreams(id);
      await jl.flush();
      const stored = await allLines(id);
      assert.deepEqual(stored.map((l) => l.message), cutWhole(data));
      assert.equal(stored.some((l) => l.message.includes('\uFFFD')), false, 'no character split');
      assert.deepEqual(live.map((l) => l.message), stored.slice(0, live.length).map((l) => l.message));
      assert.equal(stored.at(-1)!.message, 'x'.repeat(5), 'the final partial line');
    });

    it('200 000 empty lines take a handful of rows; paging by seq is exact', async () => {
      const id = await newJob();
      const jl = new JobLogs(logs, silentLogger(), { flushIntervalMs: 10_000 });
      await jl.open(id);
      const block = Buffer.alloc(4096, 10);
      for (let i = 0; i < Math.floor(200_000 / 4096); i++) jl.write(id, 'stdout', block);
      jl.write(id, 'stdout', Buffer.alloc(200_000 % 4096, 10));
      await jl.flush();
      const chunks = await allChunks(id);
      assert.ok(chunks.length <= 4, `${chunks.length} rows`);
      assert.equal(await logs.maxSeq(id), 200_000);
      assert.deepEqual((await logs.read(id, 65_535, 3)).map((l) => [l.seq, l.message]), [[65_536, ''], [65_537, ''], [65_538, '']]);
      assert.deepEqual(await logs.read(id, 200_000, 10), []);
    });

    it('maxSeq and position of a job without output are 0 / the start; reads of an unknown job are empty', async () => {
      const id = await newJob();
      assert.equal(await logs.maxSeq(id), 0);
      const start: LogPosition = { nextChunk: 1, nextSeq: 1, streamBytes: { stdout: 0, stderr: 0, system: 0 } };
      assert.deepEqual(await logs.position(id), start);
      assert.deepEqual(await logs.read('nope', 0, 10), []);
      assert.deepEqual(await logs.readChunks('nope', 0, 10), []);
    });

    it('a new JobLogs continues a job where the stored output ends (chunk, seq, stream offsets)', async () => {
      const id = await newJob();
      const first = new JobLogs(logs, silentLogger());
      await first.open(id);
      first.write(id, 'stdout', Buffer.from('one\ntwo'));
      first.append(id, 'system', 'note');
      first.endStreams(id);
      await first.flush();
      const second = new JobLogs(logs, silentLogger());
      await second.open(id);
      second.write(id, 'stdout', Buffer.from('three\n'));
      await second.flush();
      assert.deepEqual((await allLines(id)).map((l) => [l.seq, l.stream, l.message]), [
        [1, 'stdout', 'one'],
        [2, 'system', 'note'],
        [3, 'stdout', 'two'],
        [4, 'stdout', 'three'],
      ]);
      assert.equal(Buffer.concat((await allChunks(id, 'stdout')).map((c) => c.data)).toString(), 'one\ntwothree\n');
    });

    it('deleteEndedBefore deletes the output of jobs that ended before the cutoff; deleteJob one job; job rows stay', async () => {
      const days = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString();
      const make = async (over: Parameters<typeof job>[1]) => {
        const j = job(user.id, over);
        await stores.jobs.insertJob(j);
        const jl = new JobLogs(logs, silentLogger());
        await jl.open(j.request_id);
        jl.write(j.request_id, 'stdout', Buffer.from('line 1\nline 2\n'));
        jl.write(j.request_id, 'stderr', Buffer.from('line 3\n'));
        await jl.flush();
        return j.request_id;
      };
      const oldDone = await make({ status: 'completed', completed_at: days(10) });
      const oldError = await make({ status: 'error', completed_at: days(8) });
      const recent = await make({ status: 'completed', completed_at: days(1) });
      const running = await make({ status: 'running', completed_at: null });
      const sleeping = await make({ status: 'sleeping', completed_at: null });
      assert.equal(await logs.deleteEndedBefore(days(5)), 4);
      for (const id of [oldDone, oldError]) {
        assert.deepEqual(await logs.read(id, 0, 10), []);
        assert.equal(await logs.maxSeq(id), 0);
        assert.ok(await stores.jobs.getJob(id), 'the job row stays');
      }
      for (const id of [recent, running, sleeping]) assert.equal((await logs.read(id, 0, 10)).length, 3);
      assert.equal(await logs.deleteEndedBefore(days(5)), 0);
      assert.equal(await logs.deleteJob(recent), 2);
      assert.deepEqual(await logs.read(recent, 0, 10), []);
      assert.equal((await logs.read(running, 0, 10)).length, 3);
    });

    it('an append is one transaction: a duplicate chunk number stores none of its chunks', async () => {
      const id = await newJob();
      const c = (chunk: number, text: string): LogChunk => ({ job_id: id, chunk, stream: 'stdout', timestamp: new Date().toISOString(), byte_offset: (chunk - 1) * 4, line_start: (chunk - 1) * 4, first_seq: chunk, last_seq: chunk, data: Buffer.from(text + '\n') });
      await logs.appendChunks([c(1, 'one')]);
      await assert.rejects(logs.appendChunks([c(2, 'two'), c(1, 'one')]));
      assert.deepEqual((await logs.read(id, 0, 10)).map((l) => l.message), ['one']);
    });

    it('migration 011 turns lines stored before it into chunks with the same seqs and messages', async () => {
      const id = await newJob();
      const other = await newJob();
      const old: Array<[string, number, string, string]> = [];
      HOSTILE.forEach(([, m], i) => old.push([id, i + 1, i % 3 === 0 ? 'stderr' : 'stdout', m]));
      for (let i = 1; i <= 2500; i++) old.push([other, i, i % 1000 === 0 ? 'system' : 'stdout', `line ${i}`]);
      const opened = openDatabase(db.target);
      try {
        const migrator = new Migrator({ db: opened.db, provider: { getMigrations: async () => migrations(opened.dialect) } });
        const down = await migrator.migrateTo('010_url_routes');
        assert.equal(down.error, undefined);
        for (const [job, seq, stream, m] of old) {
          const { text, escaped } = encodeLogText(m);
          await sql`insert into job_logs (job_id, seq, ts, stream, text, escaped) values (${job}, ${seq}, '2026-01-01T00:00:00.000Z', ${stream}, ${text}, ${escaped ? 1 : 0})`.execute(opened.db);
        }
        assert.deepEqual(await migrateToLatest(opened), ['011_log_chunks']);
      } finally {
        await opened.db.destroy();
      }
      const utf8 = (m: string) => Buffer.from(m, 'utf8').toString('utf8');
      assert.deepEqual((await allLines(id)).map((l) => [l.seq, l.stream, l.message]), old.filter((o) => o[0] === id).map(([, seq, stream, m]) => [seq, stream, utf8(m)]));
      const got = await allLines(other, 700);
      assert.equal(got.length, 2500);
      assert.deepEqual(got.map((l) => [l.seq, l.stream, l.message]), old.filter((o) => o[0] === other).map(([, seq, stream, m]) => [seq, stream, m]));
      assert.ok((await allChunks(other)).length < 10, 'consecutive lines share chunks');
    });

    it('JobLogs: reads merge buffered output (lines and raw chunks); followers see each line and each write', async () => {
      const id = await newJob();
      const jl = new JobLogs(logs, silentLogger(), { flushIntervalMs: 10_000, flushLines: 1_000_000 });
      await jl.open(id);
      const seen: number[] = [];
      let writes = 0;
      const unsub = jl.subscribe(id, (e) => (e.type === 'log' ? seen.push(e.line.seq) : e.type === 'data' && writes++));
      for (let i = 0; i < 100; i++) jl.append(id, 'stdout', `l${i}`);
      jl.write(id, 'stdout', Buffer.from('partial...'));
      assert.equal(await logs.maxSeq(id), 0, 'not written yet');
      assert.equal((await jl.read(id, 0, 1000)).length, 100, 'buffered lines are readable');
      const raw = await jl.readChunks(id, 0, 100);
      assert.ok(Buffer.concat(raw.map((c) => c.data)).toString().endsWith('l99\npartial...'), 'the open line is readable raw');
      await jl.flush();
      assert.equal(await logs.maxSeq(id), 100);
      assert.deepEqual((await jl.read(id, 98, 10)).map((l) => l.seq), [99, 100]);
      assert.equal(seen.length, 100);
      assert.equal(writes, 101);
      jl.endStreams(id);
      assert.deepEqual((await jl.read(id, 100, 10)).map((l) => l.message), ['partial...']);
      unsub();
      assert.equal(jl.followerCount(), 0);
    });
  });

/** A log store that refuses chunks of job `a` while `poisoned`, or everything while `down`. */
class RefusingLogStore implements LogStore {
  readonly stored: LogChunk[] = [];
  appendCalls = 0;
  down = false;
  poisoned = true;

  async appendChunks(chunks: readonly LogChunk[]): Promise<void> {
    this.appendCalls++;
    if (this.down) throw new Error('connection refused');
    if (this.poisoned && chunks.some((c) => c.job_id === 'a')) throw new Error('invalid byte sequence');
    this.stored.push(...chunks);
  }

  async readChunks(jobId: string, afterChunk: number, limit: number): Promise<LogChunk[]> {
    return this.stored.filter((c) => c.job_id === jobId && c.chunk > afterChunk).sort((x, y) => x.chunk - y.chunk).slice(0, limit);
  }

  async read(): Promise<LogLine[]> {
    throw new Error('not part of these tests');
  }

  async maxSeq(jobId: string): Promise<number> {
    return this.stored.filter((c) => c.job_id === jobId).reduce((m, c) => Math.max(m, c.last_seq), 0);
  }

  async position(): Promise<LogPosition> {
    return { nextChunk: 1, nextSeq: 1, streamBytes: { stdout: 0, stderr: 0, system: 0 } };
  }

  async deleteJob(): Promise<number> {
    throw new Error('not part of these tests');
  }

  async deleteEndedBefore(): Promise<number> {
    throw new Error('not part of these tests');
  }
}

/** JobLogs' failure isolation over a store double (the layer above the log store). */
describe('JobLogs when the log store refuses output', () => {
  const capture = () => {
    const records: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => void records.push(JSON.parse(s)) });
    return { log, records };
  };

  it("a job whose output is refused costs only its own output, logged as lost with its seq range; writing resumes", async () => {
    const store = new RefusingLogStore();
    const { log, records } = capture();
    const jl = new JobLogs(store, log, { flushIntervalMs: 10_000, flushLines: 1_000_000 });
    for (const id of ['a', 'b', 'c']) await jl.open(id);
    jl.append('a', 'stdout', 'a1');
    jl.append('b', 'stdout', 'b1');
    jl.append('a', 'stderr', 'a2');
    jl.append('c', 'stdout', 'c1');
    await jl.flush();
    assert.deepEqual(store.stored.map((c) => c.job_id).sort(), ['b', 'c']);
    const errors = records.filter((r) => r.level >= 50);
    assert.equal(errors.length, 1, JSON.stringify(records));
    assert.equal(errors[0]!.jobId, 'a');
    assert.equal(errors[0]!.fromSeq, 1);
    assert.equal(errors[0]!.toSeq, 2);
    // the batch, then per job: a, b, c
    assert.equal(store.appendCalls, 4);
    store.poisoned = false;
    jl.append('a', 'stdout', 'later');
    await jl.flush();
    assert.deepEqual(store.stored.filter((c) => c.job_id === 'a').map((c) => [c.first_seq, c.data.toString()]), [[3, 'later\n']]);
  });
});
