/**
 * `mags-guest fs` run directly (on the host, in a temp directory): hostile arguments never crash it
 * (every failure is `ERR <CODE> ...` and exit 2, never a signal), a FIFO is refused without
 * blocking, a cut-off write leaves no temporary file. The sandbox side is test/sandbox-files.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildGuestAgent } from '../src/runtime/drivers/container/driver.js';

describe('mags-guest fs', () => {
  let bin: string;
  let dir: string;
  const fs = (args: string[], input?: Buffer) => spawnSync(bin, ['fs', ...args], { cwd: dir, input: input ?? Buffer.alloc(0), timeout: 10_000 });

  before(async () => {
    bin = await buildGuestAgent();
    dir = mkdtempSync(join(tmpdir(), 'mags-guest-fs-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('answers hostile arguments with ERR and exit 2, never a crash', () => {
    writeFileSync(join(dir, 'f'), 'data');
    const long = 'x'.repeat(70_000);
    const weird = Buffer.from([0x66, 0xff, 0xfe, 0x0a, 0x22, 0x5c]).toString('latin1');
    const cases: string[][] = [
      [], ['read'], ['read', ''], ['read', 'f'], ['read', 'f', 'x', '1', '0'], ['read', 'f', '0', '1'], ['read', long, '0', '-1', '0'],
      ['read', `${'a/'.repeat(3000)}b`, '0', '-1', '0'], ['read', 'f', '99999999999999999999999', '-1', '0'], ['read', '.', '0', '-1', '0'],
      ['write', 'f', '9999', '0', '-1'], ['write', 'f', 'abc', '0', '-1'], ['write', long, '-1', '1', '-1'], ['write', `${'d'.repeat(250)}/${'e'.repeat(250)}`, '-1', '1', '-1'],
      ['list', long, '1'], ['list', 'f', 'x'], ['stat', weird], ['rm', '/nonexistent', '1'], ['mkdir', long, '1', '-1'], ['mv', 'nope', 'f', '0'], ['mv', 'f'],
      ['watch', 'f', '1'], ['watch', long, '0'], ['bogus', 'f'],
    ];
    for (const args of cases) {
      const r = fs(args);
      assert.equal(r.signal, null, `fs ${args.join(' ').slice(0, 60)} died of ${r.signal}`);
      assert.equal(r.status, 2, `fs ${args.join(' ').slice(0, 60)}: ${r.stderr}`);
      assert.match(r.stderr.toString(), /^ERR [A-Z]+ /, args.join(' ').slice(0, 60));
    }
    // Random argument bytes (no NULs: argv cannot carry them).
    for (let i = 0; i < 200; i++) {
      const junk = randomBytes(1 + (i % 300)).toString('latin1').replace(/\0/g, '');
      const op = ['read', 'write', 'list', 'stat', 'rm', 'mkdir', 'mv'][i % 7]!;
      const r = fs([op, junk || 'x', junk, junk, junk].slice(0, 2 + (i % 4)));
      assert.equal(r.signal, null, `${op} with junk died of ${r.signal}`);
    }
  });

  it('escapes names in its JSON lines and reads exact ranges', () => {
    const name = 'q"b\\\n\t\u0001.txt';
    writeFileSync(join(dir, name), 'abcdef');
    const list = fs(['list', '.', '1']);
    assert.equal(list.status, 0);
    const entries = list.stdout.toString().trim().split('\n').map((l) => JSON.parse(l) as { name: string });
    assert.ok(entries.some((e) => e.name === name));
    const r = fs(['read', name, '2', '3', '0']);
    const out = r.stdout.toString();
    assert.equal(out.slice(out.indexOf('\n') + 1), 'cde');
    const tail = fs(['read', name, '-2', '-1', '0']).stdout.toString();
    assert.equal(tail.slice(tail.indexOf('\n') + 1), 'ef');
  });

  it('refuses a FIFO at once and leaves no temporary file after a short body', () => {
    spawnSync('mkfifo', [join(dir, 'fifo')]);
    const t0 = Date.now();
    const r = fs(['read', 'fifo', '0', '-1', '0']);
    assert.equal(r.status, 2);
    assert.match(r.stderr.toString(), /^ERR ENOTREG/);
    assert.ok(Date.now() - t0 < 5000);
    const short = fs(['write', 'new.bin', '-1', '0', '100'], Buffer.alloc(10));
    assert.match(short.stderr.toString(), /^ERR ESHORT/);
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.mags-') || n === 'new.bin'), []);
  });
});
