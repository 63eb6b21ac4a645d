import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Migrator, sql } from 'kysely';
import { pino } from 'pino';
import { silentLogger } from '../src/logger.js';
import { JobLogs, unstorableMarker } from '../src/services/job-logs.js';
import { newId } from '../src/services/tokens.js';
import type { LogLine, LogStore } from '../src/storage/logs/store.js';
import { decodeLogText, encodeLogText } from '../src/storage/logs/text-encoding.js';
import { migrateToLatest, migrations, openDatabase } from '../src/storage/metadata/db.js';
import type { User } from '../src/storage/metadata/store.js';
import type { Stores } from '../src/storage/stores.js';
import { STORE_BACKENDS, job, type StoreBackend } from './helpers/stores.js';

const MiB = 1024 * 1024;

/** Whether a string survives UTF-8 (no lone surrogates). */
const wellFormed = (s: string) => Buffer.from(s, 'utf8').toString('utf8') === s;

/** Messages a log store must give back exactly: NUL, lone surrogates, U+FFFD, escapes, big lines. */
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

const line = (jobId: string, seq: number, message: string, stream: LogLine['stream'] = 'stdout'): LogLine => ({
  job_id: jobId,
  seq,
  timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, seq % 1000)).toISOString(),
  stream,
  message,
});

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

    it('hostile messages (NUL, lone surrogates, U+FFFD, escapes) round-trip exactly', async () => {
      const id = await newJob();
      const lines = HOSTILE.map(([, m], i) => line(id, i + 1, m, i % 3 === 0 ? 'stderr' : 'stdout'));
      await logs.append(lines);
      const got = await logs.read(id, 0, 1000);
      assert.equal(got.length, lines.length);
      for (let i = 0; i < lines.length; i++) assert.deepEqual(got[i], lines[i], HOSTILE[i]![0]);
    });

    it('a 1 MiB line, with and without NUL, round-trips', async () => {
      const id = await newJob();
      const big = 'x'.repeat(MiB);
      const bigNul = ('y'.repeat(1023) + '\0').repeat(1024);
      await logs.append([line(id, 1, big), line(id, 2, bigNul), line(id, 3, 'after')]);
      const got = await logs.read(id, 0, 10);
      assert.equal(got.length, 3);
      assert.equal(got[0]!.message, big);
      assert.equal(got[1]!.message.length, MiB);
      assert.equal(got[1]!.message, bigNul);
      assert.equal(got[2]!.message, 'after');
    });

    it('many lines in one append: ordered reads, afterSeq paging, maxSeq', async () => {
      const id = await newJob();
      const n = 5003;
      const lines = Array.from({ length: n }, (_, i) => line(id, i + 1, `line ${i + 1} ✓ 名前${i % 97 === 0 ? '\0' : ''}`, i % 2 ? 'stderr' : 'stdout'));
      await logs.append(lines);
      assert.equal(await logs.maxSeq(id), n);
      const paged: LogLine[] = [];
      for (let after = 0; ; ) {
        const page = await logs.read(id, after, 1000);
        if (page.length === 0) break;
        paged.push(...page);
        after = page.at(-1)!.seq;
      }
      assert.deepEqual(paged, lines);
      assert.deepEqual((await logs.read(id, 4999, 2)).map((l) => l.seq), [5000, 5001]);
      assert.deepEqual(await logs.read(id, n, 10), []);
    });

    it('lines of several jobs appended in any order: each job reads its own, in seq order', async () => {
      const a = await newJob();
      const b = await newJob();
      await logs.append([line(b, 2, 'b2'), line(a, 3, 'a3'), line(a, 1, 'a1\0'), line(b, 1, 'b1')]);
      await logs.append([line(a, 2, 'a2')]);
      assert.deepEqual((await logs.read(a, 0, 10)).map((l) => l.message), ['a1\0', 'a2', 'a3']);
      assert.deepEqual((await logs.read(b, 0, 10)).map((l) => l.message), ['b1', 'b2']);
      assert.equal(await logs.maxSeq(a), 3);
      assert.equal(await logs.maxSeq(b), 2);
    });

    it('maxSeq of a job without lines is 0; reads of an unknown job are empty', async () => {
      assert.equal(await logs.maxSeq(await newJob()), 0);
      assert.equal(await logs.maxSeq('nope'), 0);
      assert.deepEqual(await logs.read('nope', 0, 10), []);
    });

    it('deleteEndedBefore deletes the lines of jobs that ended before the cutoff; job rows and other lines stay', async () => {
      const days = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString();
      const make = async (over: Parameters<typeof job>[1]) => {
        const j = job(user.id, over);
        await stores.jobs.insertJob(j);
        await logs.append([1, 2, 3].map((seq) => line(j.request_id, seq, `line ${seq}`)));
        return j.request_id;
      };
      const oldDone = await make({ status: 'completed', completed_at: days(10) });
      const oldError = await make({ status: 'error', completed_at: days(8) });
      const recent = await make({ status: 'completed', completed_at: days(1) });
      const running = await make({ status: 'running', completed_at: null });
      const sleeping = await make({ status: 'sleeping', completed_at: null });
      assert.equal(await logs.deleteEndedBefore(days(5)), 6);
      for (const id of [oldDone, oldError]) {
        assert.deepEqual(await logs.read(id, 0, 10), []);
        assert.equal(await logs.maxSeq(id), 0);
        assert.ok(await stores.jobs.getJob(id), 'the job row stays');
      }
      for (const id of [recent, running, sleeping]) assert.equal((await logs.read(id, 0, 10)).length, 3);
      assert.equal(await logs.deleteEndedBefore(days(5)), 0);
    });

    it('an append is one transaction: a duplicate seq stores none of its lines', async () => {
      const id = await newJob();
      await logs.append([line(id, 1, 'one')]);
      await assert.rejects(logs.append([line(id, 2, 'two'), line(id, 1, 'again')]));
      assert.deepEqual((await logs.read(id, 0, 10)).map((l) => l.message), ['one']);
    });

    it('many tiny lines are stored in few rows (blocks), read back exactly and paged by seq', async () => {
      const id = await newJob();
      const n = 20_000;
      const lines = Array.from({ length: n }, (_, i) => line(id, i + 1, i % 5000 === 0 ? 'marker\0' : '', i % 3 ? 'stdout' : 'stderr'));
      for (let i = 0; i < n; i += 4000) await logs.append(lines.slice(i, i + 4000));
      const opened = openDatabase(db.target);
      try {
        const rows = await sql<{ n: number | string }>`select count(*) as n from job_log_blocks where job_id = ${id}`.execute(opened.db);
        assert.ok(Number(rows.rows[0]!.n) <= n / 500, `${rows.rows[0]!.n} rows for ${n} lines`);
      } finally {
        await opened.db.destroy();
      }
      assert.deepEqual(await logs.read(id, 0, n + 1), lines);
      assert.deepEqual((await logs.read(id, 12_345, 3)).map((l) => l.seq), [12_346, 12_347, 12_348]);
      assert.equal(await logs.maxSeq(id), n);
      await assert.rejects(logs.append([line(id, n + 1, 'new'), line(id, 9999, 'overlaps a block')]));
      assert.equal(await logs.maxSeq(id), n);
    });

    it('timestamps in any form round-trip; lines stored one per row before migration 007 merge with blocks', async () => {
      const id = await newJob();
      const odd = { ...line(id, 2, 'odd time'), timestamp: '2026-01-01T00:00:00Z' };
      await logs.append([line(id, 1, 'first'), odd, line(id, 3, 'third', 'system')]);
      assert.deepEqual(await logs.read(id, 0, 10), [line(id, 1, 'first'), odd, line(id, 3, 'third', 'system')]);
      const old = await newJob();
      const opened = openDatabase(db.target);
      try {
        for (const seq of [1, 2]) {
          await sql`insert into job_logs (job_id, seq, ts, stream, text, escaped) values (${old}, ${seq}, ${line(old, seq, '').timestamp}, 'stdout', ${`old ${seq}`}, 0)`.execute(opened.db);
        }
      } finally {
        await opened.db.destroy();
      }
      await logs.append([line(old, 3, 'new 3'), line(old, 4, 'new 4')]);
      assert.deepEqual((await logs.read(old, 0, 10)).map((l) => l.message), ['old 1', 'old 2', 'new 3', 'new 4']);
      assert.deepEqual((await logs.read(old, 1, 2)).map((l) => l.message), ['old 2', 'new 3']);
      assert.equal(await logs.maxSeq(old), 4);
    });

    it('migration 002 keeps lines stored before it (read as unescaped) and can be undone', async () => {
      const id = await newJob();
      const opened = openDatabase(db.target);
      try {
        const migrator = new Migrator({ db: opened.db, provider: { getMigrations: async () => migrations(opened.dialect) } });
        const down = await migrator.migrateTo('001_initial');
        assert.equal(down.error, undefined);
        await sql`insert into job_logs (job_id, seq, ts, stream, text) values (${id}, 1, '2026-01-01T00:00:00.000Z', 'stdout', ${'C:\\0 old'})`.execute(opened.db);
        assert.deepEqual(await migrateToLatest(opened), Object.keys(migrations(opened.dialect)).slice(1));
      } finally {
        await opened.db.destroy();
      }
      assert.deepEqual((await logs.read(id, 0, 10)).map((l) => l.message), ['C:\\0 old']);
    });

    it('JobLogs: numbering, batching, reads that merge buffered lines, followers', async () => {
      const id = await newJob();
      const jl = new JobLogs(logs, silentLogger(), { flushIntervalMs: 10_000, flushLines: 1_000_000 });
      await jl.open(id);
      const seen: number[] = [];
      const unsub = jl.subscribe(id, (e) => e.type === 'log' && seen.push(e.line.seq));
      for (let i = 0; i < 100; i++) jl.append(id, 'stdout', `l${i}`);
      assert.equal(await logs.maxSeq(id), 0, 'not written yet');
      assert.equal((await jl.read(id, 0, 1000)).length, 100, 'buffered lines are readable');
      await jl.flush();
      assert.equal(await logs.maxSeq(id), 100);
      assert.deepEqual((await jl.read(id, 98, 10)).map((l) => l.seq), [99, 100]);
      assert.equal(seen.length, 100);
      unsub();
      assert.equal(jl.followerCount(), 0);
    });

    it('JobLogs: one batch with a NUL line of one job and lines of another keeps every line of both', async () => {
      const a = await newJob();
      const b = await newJob();
      const jl = new JobLogs(logs, silentLogger(), { flushIntervalMs: 10_000, flushLines: 1_000_000 });
      await jl.open(a);
      await jl.open(b);
      const wantA = ['before', 'a\0b', '\0', 'bad \uD800 utf-16', 'after'];
      const wantB = Array.from({ length: 50 }, (_, i) => `b${i}`);
      for (let i = 0; i < 50; i++) {
        if (i < wantA.length) jl.append(a, 'stdout', wantA[i]!);
        jl.append(b, 'stderr', wantB[i]!);
      }
      await jl.flush();
      assert.deepEqual((await logs.read(a, 0, 100)).map((l) => l.message), wantA);
      assert.deepEqual((await logs.read(b, 0, 100)).map((l) => l.message), wantB);
    });
  });

/** A log store that refuses lines containing POISON, or everything while `down`. */
class RefusingLogStore implements LogStore {
  readonly stored: LogLine[] = [];
  appendCalls = 0;
  down = false;

  async append(lines: readonly LogLine[]): Promise<void> {
    this.appendCalls++;
    if (this.down) throw new Error('connection refused');
    if (lines.some((l) => l.message.includes('POISON'))) throw new Error('invalid byte sequence');
    this.stored.push(...lines);
  }

  async read(jobId: string, afterSeq: number, limit: number): Promise<LogLine[]> {
    return this.stored.filter((l) => l.job_id === jobId && l.seq > afterSeq).sort((x, y) => x.seq - y.seq).slice(0, limit);
  }

  async maxSeq(jobId: string): Promise<number> {
    return this.stored.filter((l) => l.job_id === jobId).reduce((m, l) => Math.max(m, l.seq), 0);
  }

  async deleteEndedBefore(): Promise<number> {
    throw new Error('retention is not part of these tests');
  }
}

/** JobLogs' failure isolation over a store double (the layer above the log store). */
describe('JobLogs when the log store refuses lines', () => {
  const capture = () => {
    const records: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => void records.push(JSON.parse(s)) });
    return { log, records };
  };

  it('a refused line becomes a visible marker line, logged; every other line of every job is stored', async () => {
    const store = new RefusingLogStore();
    const { log, records } = capture();
    const jl = new JobLogs(store, log, { flushIntervalMs: 10_000, flushLines: 1_000_000 });
    for (const id of ['a', 'b', 'c']) await jl.open(id);
    jl.append('a', 'stdout', 'a1');
    const poisoned = jl.append('a', 'stdout', 'a2 POISON');
    jl.append('b', 'stdout', 'b1');
    jl.append('a', 'stderr', 'a3');
    jl.append('c', 'stdout', 'c1');
    await jl.flush();
    assert.deepEqual((await store.read('a', 0, 10)).map((l) => [l.seq, l.stream, l.message]), [
      [1, 'stdout', 'a1'],
      [2, 'system', unstorableMarker(poisoned)],
      [3, 'stderr', 'a3'],
    ]);
    assert.match(unstorableMarker(poisoned), /output line 2 \(stdout, 9 bytes\) could not be stored/);
    assert.deepEqual((await store.read('b', 0, 10)).map((l) => l.message), ['b1']);
    assert.deepEqual((await store.read('c', 0, 10)).map((l) => l.message), ['c1']);
    const errors = records.filter((r) => r.level >= 50);
    assert.equal(errors.length, 1, JSON.stringify(records));
    assert.equal(errors[0]!.jobId, 'a');
    assert.equal(errors[0]!.seq, 2);
    // batch (1), then per job: a fails (1), b and c (2), then a line by line: 3 lines + 1 marker.
    assert.equal(store.appendCalls, 1 + 3 + 4);
  });

  it('when the store refuses even a marker, the rest of that job is logged as lost (no line-by-line storm)', async () => {
    const store = new RefusingLogStore();
    const { log, records } = capture();
    const jl = new JobLogs(store, log, { flushIntervalMs: 10_000, flushLines: 1_000_000 });
    await jl.open('a');
    for (let i = 0; i < 500; i++) jl.append('a', 'stdout', `l${i}`);
    store.down = true;
    await jl.flush();
    assert.equal(store.stored.length, 0);
    assert.ok(store.appendCalls <= 3, `${store.appendCalls} append calls`);
    const lost = records.find((r) => r.msg.includes('they are lost'));
    assert.equal(lost?.lost, 500);
    store.down = false;
    jl.append('a', 'stdout', 'later');
    await jl.flush();
    assert.deepEqual((await store.read('a', 0, 10)).map((l) => [l.seq, l.message]), [[501, 'later']], 'writing resumes');
  });
});
