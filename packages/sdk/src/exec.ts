import { MagsError, type MagsErrorCode } from './errors.js';
import type { CallOptions } from './http.js';
import type { ExecOptions } from './client.js';

/** The exec body and call options: `timeout` (ms) becomes whole `timeout_seconds`; the HTTP call waits 30 s longer. */
export function execRequest(command: string, opts: ExecOptions): { body: Record<string, unknown>; call: CallOptions } {
  const { timeout, env, cwd, stdin, signal, timeoutMs } = opts;
  const seconds = timeout !== undefined ? Math.max(1, Math.ceil(timeout / 1000)) : undefined;
  const body: Record<string, unknown> = { command };
  if (seconds !== undefined) body.timeout_seconds = seconds;
  if (env !== undefined) body.env = env;
  if (cwd !== undefined) body.cwd = cwd;
  if (stdin !== undefined) body.stdin = stdin;
  return { body, call: { signal, timeoutMs: timeoutMs ?? (seconds !== undefined ? seconds * 1000 + 30_000 : 330_000) } };
}

/**
 * Reads the NDJSON exec stream: output events go to `onOutput` (awaited when it returns a promise,
 * so a slow consumer holds the stream back), the exit event is the result.
 */
export async function readExecStream(res: Response, onOutput: (stream: 'stdout' | 'stderr', text: string) => void | Promise<unknown>): Promise<{ exitCode: number; timedOut: boolean }> {
  if (!res.body) throw new MagsError('The exec stream has no body', { code: 'INVALID_RESPONSE' });
  const decoder = new TextDecoder();
  let buf = '';
  let end: { exitCode: number; timedOut: boolean } | undefined;
  const handle = async (line: string) => {
    if (line.trim() === '') return;
    const ev = JSON.parse(line) as { type: string; data?: string; exit_code?: number; timed_out?: boolean; error?: string; code?: string };
    if (ev.type === 'stdout' || ev.type === 'stderr') await onOutput(ev.type, ev.data ?? '');
    else if (ev.type === 'exit') end = { exitCode: ev.exit_code ?? 255, timedOut: ev.timed_out ?? false };
    else if (ev.type === 'error') throw new MagsError(ev.error ?? 'exec failed', { code: (ev.code ?? 'INTERNAL_ERROR') as MagsErrorCode });
  };
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      await handle(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  }
  await handle(buf + decoder.decode());
  if (!end) throw new MagsError('The exec stream ended before the command did (connection lost)', { code: 'INVALID_RESPONSE' });
  return end;
}
