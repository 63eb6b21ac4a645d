import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The Python that runs moto: `MAGS_TEST_PYTHON` (test.sh sets it to one that has moto) or `python3`.
 */
export const MOTO_PYTHON = process.env.MAGS_TEST_PYTHON ?? 'python3';

/** A moto S3 server on a free loopback port (any access key works; the region is us-east-1). */
export interface TestMoto {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  port: number;
  /** Kills the server and waits until it is gone. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return true;
  return Promise.race([
    new Promise<boolean>((resolve) => child.once('exit', () => resolve(true))),
    sleep(ms).then(() => exited(child)),
  ]);
}

/**
 * Starts `python3 -m moto.server` on 127.0.0.1. Fails with a message that says how to install moto
 * when it is missing, and with moto's own output when it does not come up.
 */
export async function startMoto(): Promise<TestMoto> {
  const probe = spawnSync(MOTO_PYTHON, ['-c', 'import moto.server'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    const why = (probe.error?.message ?? probe.stderr ?? '').trim().split('\n').pop();
    throw new Error(
      `moto is not available to ${MOTO_PYTHON} (${why}); the S3 blob store tests need it. ` +
        `Run ./test.sh (it checks for moto), install it with \`${MOTO_PYTHON} -m pip install 'moto[server]'\`, ` +
        'or set MAGS_TEST_PYTHON to a Python that has it.',
    );
  }
  const port = await freePort();
  const child = spawn(MOTO_PYTHON, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    output = (output + s).slice(-4000);
  });
  // If the test process dies before `after` runs, moto must not outlive it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (exited(child)) return;
    child.kill('SIGTERM');
    if (!(await waitExit(child, 5000))) {
      child.kill('SIGKILL');
      await waitExit(child, 5000);
    }
  };
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  try {
    for (;;) {
      if (exited(child)) throw new Error(`moto exited with ${child.exitCode ?? child.signalCode}`);
      const up = await fetch(`${endpoint}/moto-api/`).then(
        (res) => res.body?.cancel().then(() => true) ?? true,
        () => false,
      );
      if (up) break;
      if (Date.now() > deadline) throw new Error('moto did not answer within 30 s');
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw new Error(`could not start moto on port ${port}: ${(err as Error).message}\n${output}`);
  }
  return { endpoint, port, stop };
}
