/**
 * Small truths of the error registry: every code is raised by the server somewhere (a code nothing
 * raises is a promise the API does not keep), and errors Node's HTTP parser meets before any route
 * still answer in the registry shape with an x-request-id.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '@mags/shared';
import { createHarness } from './helpers/harness.js';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

/**
 * Codes in the registry that no code path raises yet (none now). The test tells when one of them is
 * raised, so the list only ever shrinks.
 */
const RAISED_ELSEWHERE = new Set<string>([]);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Sends raw bytes on a fresh connection and returns everything the server wrote before closing. */
function raw(port: number, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let got = '';
    sock.on('data', (d) => (got += d.toString()));
    sock.on('error', reject);
    sock.on('close', () => resolve(got));
    sock.end(bytes);
  });
}

describe('error registry', () => {
  it('every code is raised by the server source', () => {
    const text = sources(SRC).map((f) => readFileSync(f, 'utf8')).join('\n');
    const unraised = Object.keys(ERROR_CODES).filter((code) => !text.includes(`'${code}'`) && !RAISED_ELSEWHERE.has(code));
    assert.deepEqual(unraised, [], 'raise these codes somewhere or remove them from packages/shared/src/errors.ts');
    const nowRaised = [...RAISED_ELSEWHERE].filter((code) => text.includes(`'${code}'`));
    assert.deepEqual(nowRaised, [], 'these are raised here now: drop them from RAISED_ELSEWHERE');
  });

  it('headers over the limit and malformed HTTP answer in the registry shape with x-request-id', async () => {
    const h = await createHarness();
    try {
      const url = new URL(await h.app.listen({ port: 0, host: '127.0.0.1' }));
      const port = Number(url.port);
      const big = await raw(port, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      assert.match(big, /^HTTP\/1\.1 431 /);
      assert.match(big, /\r\nx-request-id: [0-9a-f-]{36}\r\n/);
      const bigBody = JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4)) as { code: string; error: string; hint: string };
      assert.equal(bigBody.code, 'HEADERS_TOO_LARGE');
      assert.ok(bigBody.hint);

      const bad = await raw(port, 'GET /health HTTP/1.1\r\nHost x no colon\r\n\r\n');
      assert.match(bad, /^HTTP\/1\.1 400 /);
      assert.equal((JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4)) as { code: string }).code, 'VALIDATION_ERROR');
      const garbage = await raw(port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a]));
      assert.match(garbage, /^HTTP\/1\.1 400 /);
      // The server still answers normally afterwards.
      assert.equal((await fetch(`${url.origin}/health`)).status, 200);
    } finally {
      await h.close();
    }
  });
});
