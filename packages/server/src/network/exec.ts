import { spawn } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** What to install when a host tool is missing. */
const INSTALL_HINT: Record<string, string> = {
  ip: 'ip not found: apt-get install iproute2',
  nft: 'nft not found: apt-get install nftables',
};

/**
 * Runs a host tool with `input` on stdin and collects its output. Never throws for a non-zero exit
 * (callers decide what a failure means); throws an actionable error when the tool is missing.
 */
export function run(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') reject(new Error(INSTALL_HINT[cmd] ?? `${cmd} not found on PATH`));
      else reject(e);
    });
    child.on('close', (code, signal) => {
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    // A tool that exits before reading all of stdin makes the pipe error; the exit code says enough.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

/** Like `run`, but throws with the tool's stderr when it exits non-zero. */
export async function runOk(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) {
    const what = `${cmd} ${args.join(' ')}`.trim();
    throw new Error(`${what} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

/** How a host tool is run: like `run` (never throws for a non-zero exit). */
export type Runner = (cmd: string, args: string[], input?: string) => Promise<RunResult>;

/** Runs `ip [-n netns] -batch -` over the given commands (one per line). */
export function ipBatch(lines: string[], opts: { netns?: string; force?: boolean; runner?: Runner } = {}): Promise<RunResult> {
  const args: string[] = [];
  if (opts.netns) args.push('-n', opts.netns);
  if (opts.force) args.push('-force');
  args.push('-batch', '-');
  return (opts.runner ?? run)('ip', args, lines.join('\n') + '\n');
}

/** `ipBatch` that throws with ip's message on failure. */
export async function ipBatchOk(lines: string[], opts: { netns?: string; runner?: Runner } = {}): Promise<void> {
  const r = await ipBatch(lines, opts);
  if (r.code !== 0) {
    throw new Error(`ip${opts.netns ? ` -n ${opts.netns}` : ''} -batch failed: ${r.stderr.trim()}`);
  }
}

/** Parses the output of `ip -j ...` (empty output = empty list). */
export function parseJson<T>(text: string): T[] {
  const t = text.trim();
  return t ? (JSON.parse(t) as T[]) : [];
}
