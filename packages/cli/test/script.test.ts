/** The words after `mags run` become a script: one word as it is, several as an exactly quoted argv. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { argvToScript, scriptFromWords, shellQuote } from '../src/script.js';

/** Runs `script` in the same shell the guest agent uses (bash -c) and returns its stdout. */
function bash(script: string): string {
  return execFileSync('bash', ['-c', script], { encoding: 'utf8' });
}

const HOSTILE = [
  'a   b', '', "it's", '"double"', '$HOME', '`id`', '$(id)', 'a;b', 'a|b', 'a&b', '>out', '<in', '*', '?', '[x]',
  '~', '~root', '#comment', 'tab\there', 'new\nline', '\\', "'", "''", '!', '{a,b}', 'x=y', '--opt=value', '-', 'ünïcode',
];

test('several words reach the program unchanged, whatever they contain', () => {
  const out = bash(argvToScript(['printf', '%s\\0', ...HOSTILE]));
  assert.deepEqual(out.split('\0').slice(0, -1), HOSTILE);
});

test("the issue's examples: printf keeps 'a   b' as one argument; python3 -c keeps its code", () => {
  assert.equal(bash(scriptFromWords(['printf', '[%s]\\n', 'a   b', 'c'])), '[a   b]\n[c]\n');
  assert.equal(scriptFromWords(['python3', '-c', 'print(1)']), "python3 -c 'print(1)'");
});

test('one word is a script, run by the shell as written', () => {
  assert.equal(scriptFromWords(['echo a | tr a b; exit 0']), 'echo a | tr a b; exit 0');
  assert.equal(bash(scriptFromWords(['echo a | tr a b'])), 'b\n');
});

test('a first word bash would read as syntax or an assignment is run as a program name', () => {
  assert.equal(argvToScript(['if', 'x']), "'if' x");
  assert.equal(argvToScript(['A=b', 'c']), "'A=b' c");
  assert.equal(argvToScript(['env', 'A=b']), 'env A=b');
});

test('plain words stay bare, so the script in `mags list` stays readable', () => {
  assert.equal(argvToScript(['ls', '-la', '/tmp/x.txt', '--color=auto']), 'ls -la /tmp/x.txt --color=auto');
  assert.equal(shellQuote(''), "''");
  assert.equal(shellQuote("it's"), "'it'\\''s'");
});
