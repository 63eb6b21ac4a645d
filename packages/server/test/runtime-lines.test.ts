/** Line splitting of script output (pure; the agent round trip is covered by the conformance suite). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineSplitter } from '../src/guest/client.js';

function split(chunks: Buffer[], maxLine?: number): string[] {
  const lines: string[] = [];
  const s = new LineSplitter((t) => lines.push(t), maxLine);
  for (const c of chunks) s.push(c);
  s.end();
  return lines;
}

describe('LineSplitter', () => {
  it('splits on newlines across chunks and keeps a final partial line', () => {
    assert.deepEqual(split([Buffer.from('a\nb'), Buffer.from('c\n\nd')]), ['a', 'bc', '', 'd']);
  });

  it('never splits a UTF-8 character that straddles two chunks', () => {
    const bytes = Buffer.from('héllo → wörld\n');
    const chunks = [...bytes].map((b) => Buffer.from([b]));
    assert.deepEqual(split(chunks), ['héllo → wörld']);
  });

  it('cuts lines longer than the maximum instead of buffering them', () => {
    assert.deepEqual(split([Buffer.from('x'.repeat(10) + '\nyy')], 4), ['xxxx', 'xxxx', 'xx', 'yy']);
  });

  it('emits nothing for empty output', () => {
    assert.deepEqual(split([]), []);
  });
});
