import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import type { ExecRequest, ExecResult, OutputLine, PoolStatus, Sandbox, SandboxPool, SandboxSpec } from '../../src/runtime/driver.js';

/**
 * Test double of the sandbox pool for unit tests of the layers above it (API, services, scheduler):
 * "sandboxes" run the script with the host's /bin/sh in a temp dir, honouring env, timeout and
 * abort like the real driver. Real sandboxes are covered by the e2e and runtime tests.
 */
export class FakePool implements SandboxPool {
  busy = new Set<FakeSandbox>();
  acquired = 0;
  released = 0;
  /** Specs of every acquire, in order. */
  specs: SandboxSpec[] = [];
  /** When set, acquire fails with this message. */
  failAcquire: string | undefined;
  /** Extra delay of acquire (ms). */
  acquireDelayMs = 0;

  start(): void {}

  async acquire(spec: SandboxSpec): Promise<{ sandbox: Sandbox; warm: boolean }> {
    if (this.acquireDelayMs) await new Promise((r) => setTimeout(r, this.acquireDelayMs));
    if (this.failAcquire) throw new Error(this.failAcquire);
    this.specs.push(spec);
    const sb = new FakeSandbox(spec);
    this.busy.add(sb);
    this.acquired++;
    return { sandbox: sb, warm: true };
  }

  async release(sandbox: Sandbox): Promise<void> {
    this.busy.delete(sandbox as FakeSandbox);
    this.released++;
    await sandbox.destroy();
  }

  status(): PoolStatus {
    return { idle_vms: 1, busy_vms: this.busy.size, total_vms: 1 + this.busy.size, min_pool_size: 1, max_pool_size: 4 };
  }

  async stop(): Promise<void> {}
}

export class FakeSandbox implements Sandbox {
  readonly id = 'fake-' + randomUUID().slice(0, 8);
  destroyed = false;
  constructor(readonly spec: SandboxSpec) {}

  exec(req: ExecRequest, onOutput: (line: OutputLine) => void): Promise<ExecResult> {
    const started = Date.now();
    return new Promise((resolve) => {
      const child = spawn('/bin/sh', ['-c', req.script], {
        cwd: tmpdir(),
        env: { PATH: process.env.PATH, ...req.env },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let reason: ExecResult['reason'] | undefined;
      const kill = (r: ExecResult['reason']) => {
        reason ??= r;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      };
      const timer = req.timeoutMs ? setTimeout(() => kill('timeout'), req.timeoutMs) : undefined;
      const onAbort = () => kill('cancelled');
      req.signal?.addEventListener('abort', onAbort);
      if (req.signal?.aborted) onAbort();
      for (const stream of ['stdout', 'stderr'] as const) {
        let buf = '';
        child[stream].setEncoding('utf8');
        child[stream].on('data', (chunk: string) => {
          buf += chunk;
          let i: number;
          while ((i = buf.indexOf('\n')) >= 0) {
            onOutput({ stream, text: buf.slice(0, i), at: new Date() });
            buf = buf.slice(i + 1);
          }
        });
        child[stream].on('end', () => {
          if (buf) onOutput({ stream, text: buf, at: new Date() });
        });
      }
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        req.signal?.removeEventListener('abort', onAbort);
        const durationMs = Date.now() - started;
        if (reason) return resolve({ exitCode: null, reason, durationMs });
        if (signal) return resolve({ exitCode: null, reason: 'signaled', signal, durationMs });
        resolve({ exitCode: code, reason: 'exited', durationMs });
      });
    });
  }

  async updateLimits(): Promise<void> {}

  async destroy(): Promise<void> {
    this.destroyed = true;
  }
}
