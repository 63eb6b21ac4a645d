/**
 * `mags run -it` against a real server with real sandboxes, driven through tmux (a real terminal):
 * an interactive bash on a terminal in the sandbox, keystrokes as typed, Ctrl-C reaching the remote
 * foreground process, the window size and its changes, and the exit code of the session.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAGS_BIN, cleanEnv, startServer, tempHome, type TestServer } from './helpers.js';

const tmux = (socket: string, ...args: string[]): string => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });

let onTimeout: (() => string) | undefined;

async function until(what: string, fn: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${onTimeout ? ':\n' + onTimeout() : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('mags run -it (real server, real sandboxes, tmux)', () => {
  let server: TestServer;
  let removeHome: () => void;
  let dir: string;
  let socket: string;

  before(async () => {
    server = await startServer();
    const home = tempHome();
    removeHome = home.remove;
    dir = mkdtempSync(join(tmpdir(), 'mags-tty-'));
    socket = join(dir, 'tmux.sock');
    const env = cleanEnv({ HOME: home.home, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token, TERM: 'xterm-256color' });
    const envArgs = Object.entries(env).filter(([k]) => /^(HOME|MAGS_|PATH$|TERM$)/.test(k)).map(([k, v]) => `${k}=${v}`);
    const rc = join(dir, 'rc');
    tmux(socket, 'new-session', '-d', '-x', '100', '-y', '30', 'env', ...envArgs, 'sh', '-c', `'${process.execPath}' '${MAGS_BIN}' run -it 'bash --norc -i'; echo "exit=$?" > '${rc}'; sleep 30`);
  });
  after(async () => {
    try {
      if (socket) execFileSync('tmux', ['-S', socket, 'kill-server'], { stdio: 'ignore' });
    } catch (err) {
      if (!String((err as Error).message).includes('no server')) throw err;
    } finally {
      await server?.stop();
      removeHome?.();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  const screen = () => tmux(socket, 'capture-pane', '-p', '-S', '-100');
  onTimeout = () => screen();
  const type = (...keys: string[]) => tmux(socket, 'send-keys', ...keys);

  test('an interactive shell: typed commands, the window size, Ctrl-C, resize, exit code', async () => {
    await until('a prompt', () => /[#$]\s*$/m.test(screen()), 90_000);
    type('echo tty=$(tty) sum=$((40+2))', 'Enter');
    await until('the command output', () => /tty=\/dev\/pts\/\d+ sum=42/.test(screen()));
    type('stty size', 'Enter');
    await until('the window size', () => /^30 100\s*$/m.test(screen()));
    type('sleep 100; echo after-sleep', 'Enter');
    await new Promise((r) => setTimeout(r, 1000));
    type('C-c');
    type('echo interrupted-ok', 'Enter');
    await until('Ctrl-C to stop the sleep', () => /^interrupted-ok\s*$/m.test(screen()), 10_000);
    assert.ok(!/^after-sleep/m.test(screen()), 'the sleep was interrupted, not finished');
    tmux(socket, 'resize-window', '-x', '120', '-y', '40');
    await new Promise((r) => setTimeout(r, 500));
    type('stty size', 'Enter');
    await until('the new window size', () => /^40 120\s*$/m.test(screen()));
    type('exit 5', 'Enter');
    await until('the session to end', () => {
      try {
        return readFileSync(join(dir, 'rc'), 'utf8').trim() === 'exit=5';
      } catch {
        return false;
      }
    });
  });
});
