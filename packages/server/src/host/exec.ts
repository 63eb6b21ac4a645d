/** Small helpers to run host commands (crun, mount, mkfs) with errors that name the command. */
import { spawn } from 'node:child_process';

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Words for error messages, e.g. "crun (apt-get install crun)". */
  what?: string;
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the command (SIGKILL) and fail after this long. */
  timeoutMs?: number;
}

/** Runs a command to completion; rejects with its stderr when it fails. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: opts.env });
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    child.once('error', (e: NodeJS.ErrnoException) => {
      reject(new Error(e.code === 'ENOENT' ? `${cmd} not found${opts.what ? `: ${opts.what}` : ''}` : `${cmd}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      if (timedOut) reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${opts.timeoutMs} ms`));
      else if (code === 0) resolve({ stdout, stderr });
      else {
        const e = new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim() || stdout.trim().slice(-500)}`);
        reject(Object.assign(e, { stdout, stderr, exitCode: code }));
      }
    });
  });
}

/** Runs a command and hands every output line (stdout and stderr) to `onLine`; keeps the tail for errors. */
export function runStreaming(cmd: string, args: string[], onLine: (line: string) => void, opts: RunOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env });
    const tail: string[] = [];
    const feed = (stream: NodeJS.ReadableStream) => {
      let partial = '';
      stream.on('data', (b: Buffer) => {
        const parts = (partial + b.toString()).split('\n');
        partial = parts.pop()!;
        for (const line of parts) {
          tail.push(line);
          if (tail.length > 30) tail.shift();
          onLine(line);
        }
      });
    };
    feed(child.stdout!);
    feed(child.stderr!);
    child.once('error', (e: NodeJS.ErrnoException) => {
      reject(new Error(e.code === 'ENOENT' ? `${cmd} not found${opts.what ? `: ${opts.what}` : ''}` : `${cmd}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${opts.what ?? cmd} failed (${signal ?? `exit ${code}`}):\n${tail.join('\n')}`));
    });
  });
}
