/**
 * `mags run` with stdin: how an upload that the server cut off is judged. The server closes a stdin
 * upload when the job ends while stdin is still coming (`yes | mags run 'echo done'`); the client's
 * write then fails with EPIPE or a reset, racing the server's answer. That is no error once the job
 * has ended; a refused connection still is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { isConnectionReset, Mags } from '@mags/sdk';

/** Like `yes` on a pipe: chunks without end, each after a turn of the event loop (as stdin's come). */
async function* endless(): AsyncGenerator<Uint8Array> {
  const chunk = new Uint8Array(64 * 1024).fill(121);
  for (;;) {
    await new Promise((r) => setImmediate(r));
    yield chunk;
  }
}

test('an upload the server closes mid-body counts as dropped; a refused connection does not', async () => {
  const sockets = new Set<Socket>();
  // Reads the request head and a little of the body, then closes without an answer.
  const server = createServer((socket) => {
    sockets.add(socket);
    let seen = 0;
    socket.on('data', (d: Buffer) => {
      seen += d.length;
      if (seen > 256 * 1024) socket.destroy();
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const mags = new Mags({ apiUrl: `http://127.0.0.1:${port}`, apiToken: 'mags_test' });
    const err = await mags.sendStdin('job', endless(), { timeoutMs: 0 }).then(
      () => assert.fail('the upload should fail'),
      (e: Error) => e,
    );
    assert.equal(isConnectionReset(err), true, `${err.message}: ${String((err as { cause?: unknown }).cause)}`);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
  // Nothing listens on the port any more: refused, which is not how a job's stdin ends.
  const refused = await new Mags({ apiUrl: `http://127.0.0.1:${port}`, apiToken: 'mags_test' }).sendStdin('job', 'x').then(
    () => assert.fail('the upload should fail'),
    (e: Error) => e,
  );
  assert.equal(isConnectionReset(refused), false, refused.message);
});
