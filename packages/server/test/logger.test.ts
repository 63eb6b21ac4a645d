/** The server log's readable form for a terminal (JSON lines otherwise). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prettyLine } from '../src/logger.js';

describe('readable server log', () => {
  it('time, level, component, message, then the other fields; errors with their stack; no colour without a terminal', () => {
    const line = JSON.stringify({ level: 'info', time: '2026-11-29T05:40:01.234Z', pid: 7, component: 'scheduler', jobId: 'j1', status: 'completed', exitCode: 0, note: 'two words', msg: 'job ended' });
    assert.equal(prettyLine(line, false), '05:40:01.234 INFO  [scheduler] job ended jobId=j1 status=completed exitCode=0 note="two words"');
    const err = JSON.stringify({ level: 'error', time: '2026-11-29T05:40:02.000Z', msg: 'request failed', err: { message: 'boom', stack: 'Error: boom\n    at x (y.js:1:1)' } });
    assert.equal(prettyLine(err, false), '05:40:02.000 ERROR request failed err="boom"\n    Error: boom\n        at x (y.js:1:1)');
    assert.match(prettyLine(line, true), /\x1b\[32mINFO /);
    assert.equal(prettyLine('not json', false), 'not json');
  });
});
