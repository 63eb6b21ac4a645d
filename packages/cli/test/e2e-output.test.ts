/**
 * Byte-exact job output against a real server with real sandboxes: `mags run` and `mags logs`
 * write the script's stdout bytes to stdout and its stderr bytes to stderr exactly (binaries,
 * NUL, CR, invalid UTF-8, no trailing newline), partial lines appear as they are written, and the
 * raw HTTP form (`?format=raw`) and the Mags JSON lines agree with them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { MAGS_BIN, cleanEnv, mags, startServer, tempHome, type TestServer } from './helpers.js';

/** Runs `mags` and keeps stdout and stderr as bytes, with the time each stdout chunk arrived. */
function magsBytes(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: Buffer; stderr: Buffer; chunks: Array<{ at: number; data: Buffer }> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAGS_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const chunks: Array<{ at: number; data: Buffer }> = [];
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
      chunks.push({ at: Date.now(), data: d });
    });
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err), chunks });
    });
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('byte-exact job output (real server, real sandboxes)', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let removeHome: () => void;
  const api = async (path: string, init: RequestInit = {}) =>
    fetch(server.url + path, { ...init, headers: { authorization: `Bearer ${server.token}`, ...(init.headers ?? {}) } });

  before(async () => {
    server = await startServer();
    const home = tempHome();
    removeHome = home.remove;
    env = cleanEnv({ HOME: home.home, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token });
  });
  after(async () => {
    try {
      await server?.stop();
    } finally {
      removeHome?.();
    }
  });

  test("mags run 'cat /bin/ls' > file: the file is the sandbox's /bin/ls byte for byte; mags logs gives it again", async () => {
    const sum = await mags(['run', 'sha256sum /bin/ls'], { env });
    assert.equal(sum.code, 0, sum.stderr);
    const want = sum.stdout.split(' ')[0]!;
    const r = await magsBytes(['run', 'cat /bin/ls'], env);
    assert.equal(r.code, 0, r.stderr.toString());
    assert.ok(r.stdout.length > 50_000, `${r.stdout.length} bytes`);
    assert.equal(sha256(r.stdout), want);
    assert.equal(r.stderr.length, 0, r.stderr.toString());

    const detached = await mags(['run', '-d', 'cat /bin/ls; printf "no newline at the end" >&2'], { env });
    assert.equal(detached.code, 0, detached.stderr);
    const id = detached.stdout.trim();
    const followed = await magsBytes(['logs', '-f', id], env);
    assert.equal(followed.code, 0, followed.stderr.toString());
    assert.equal(sha256(followed.stdout), want);
    assert.equal(followed.stderr.toString(), 'no newline at the end');
    const again = await magsBytes(['logs', id], env);
    assert.equal(sha256(again.stdout), want);
  });

  test('NUL, CR, invalid UTF-8 and a missing final newline reach both streams exactly', async () => {
    const script = String.raw`printf 'a\000b\r\n\377\376 caf\303\251\nlast'; printf 'e1\r\ne2 \200' >&2; exit 3`;
    const r = await magsBytes(['run', script], env);
    assert.equal(r.code, 3);
    assert.deepEqual(r.stdout, Buffer.from('a\0b\r\n\xff\xfe caf\xc3\xa9\nlast', 'latin1'));
    assert.deepEqual(r.stderr, Buffer.from('e1\r\ne2 \x80', 'latin1'));
  });

  test('a partial line (progress dots) appears as it is written, long before its newline', async () => {
    const r = await magsBytes(['run', "printf 'working'; sleep 3; echo ' done'"], env);
    assert.equal(r.code, 0, r.stderr.toString());
    assert.equal(r.stdout.toString(), 'working done\n');
    const first = r.chunks.find((c) => c.data.includes('working'))!;
    const last = r.chunks.find((c) => c.data.includes('done'))!;
    assert.ok(last.at - first.at >= 2000, `the partial line came ${last.at - first.at} ms before the rest`);
  });

  test('HTTP: raw per stream, framed both with an end frame, and the Mags JSON lines agree', async () => {
    const sub = await api('/api/v1/mags-jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ script: "printf 'o1\\no2'; printf 'e1\\n' >&2", type: 'inline' }) });
    const id = ((await sub.json()) as { request_id: string }).request_id;
    const framedRes = await api(`/api/v1/mags-jobs/${id}/logs?format=raw&follow=1`);
    assert.equal(framedRes.headers.get('content-type'), 'application/vnd.mags.stream');
    const framed = Buffer.from(await framedRes.arrayBuffer());
    const frames: Array<[number, string]> = [];
    for (let pos = 0; pos < framed.length; ) {
      const len = framed.readUInt32BE(pos + 4);
      frames.push([framed[pos]!, framed.toString('utf8', pos + 8, pos + 8 + len)]);
      pos += 8 + len;
    }
    const end = frames.pop()!;
    assert.equal(end[0], 4);
    assert.equal(JSON.parse(end[1]).status, 'completed');
    assert.equal(frames.filter((f) => f[0] === 1).map((f) => f[1]).join(''), 'o1\no2');
    assert.equal(frames.filter((f) => f[0] === 2).map((f) => f[1]).join(''), 'e1\n');

    const out = await api(`/api/v1/mags-jobs/${id}/logs?format=raw&stream=stdout`);
    assert.equal(out.headers.get('content-type'), 'application/octet-stream');
    assert.equal(await out.text(), 'o1\no2');
    assert.equal(await (await api(`/api/v1/mags-jobs/${id}/logs?format=raw&stream=stderr`)).text(), 'e1\n');

    const json = (await (await api(`/api/v1/mags-jobs/${id}/logs`)).json()) as { logs: Array<{ seq: number; stream: string; message: string }> };
    const mine = json.logs.filter((l) => l.stream !== 'system');
    assert.deepEqual(mine.map((l) => [l.stream, l.message]).sort(), [['stderr', 'e1'], ['stdout', 'o1'], ['stdout', 'o2']]);
    assert.deepEqual(json.logs.map((l) => l.seq), json.logs.map((_, i) => i + 1));

    for (const bad of ['stream=stdout', 'format=raw&after=1', 'format=raw&limit=5', 'format=bytes']) {
      const res = await api(`/api/v1/mags-jobs/${id}/logs?${bad}`);
      assert.equal(res.status, 400, bad);
      assert.equal(((await res.json()) as { code: string }).code, 'VALIDATION_ERROR', bad);
    }
  });
});
