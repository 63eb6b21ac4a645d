/**
 * The examples of docs/cli.md run as written, in order, against a real server: every `mags ...`
 * line of its sh blocks, except those that need root-only or interactive set-up (`sudo`, a bare
 * `mags login`), placeholders (`3f2a0c7e-...`) or the URL proxy (`--url`, `mags url`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { MAGS_BIN, cleanEnv, startServer, tempHome, type TestServer } from './helpers.js';

const DOC = new URL('../../../../docs/cli.md', import.meta.url);
const SKIP = [/^sudo /, /^mags login$/, /\.\.\./, /--url\b/, /^mags url /];

function examples(): string[] {
  const lines: string[] = [];
  let inSh = false;
  for (const line of readFileSync(DOC, 'utf8').split('\n')) {
    if (line.startsWith('```')) {
      inSh = line === '```sh';
      continue;
    }
    if (inSh && /^(mags|printf|export) /.test(line) && /\bmags\b/.test(line) && !SKIP.some((re) => re.test(line))) lines.push(line);
  }
  return lines;
}

let server: TestServer;
let home: string;
let remove: () => void;
let env: Record<string, string>;

before(async () => {
  server = await startServer({ env: { MAGS_SSH_PORT: '0' } });
  ({ home, remove } = tempHome());
  const bin = join(home, 'bin');
  mkdirSync(bin);
  symlinkSync(MAGS_BIN, join(bin, 'mags'));
  env = cleanEnv({ HOME: home, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token });
});

after(async () => {
  await server?.stop();
  remove?.();
});

test('docs/cli.md examples run as written', async () => {
  const lines = examples();
  assert.ok(lines.length >= 25, `only ${lines.length} examples found`);
  for (const line of lines) {
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn('bash', ['-c', line], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.on('close', (c) => resolve({ code: c, output }));
    });
    assert.equal(code, 0, `${line}\n${output}`);
    const expected = /# (\d+)$/.exec(line)?.[1];
    if (expected) assert.match(output, new RegExp(`exit code: ${expected}\\n`), `${line}\n${output}`);
    if (line.includes("'echo out; echo err >&2; exit 3'")) assert.match(output, /exit code: 3\n/);
  }
});
