/**
 * Following a job's output: the live SSE stream (`GET /mags-jobs/{id}/logs?follow=1`) when the server
 * offers it, resuming after the last seen line if the connection drops, and polling as a fallback for
 * servers without the stream.
 */
import { MagsError, NotFoundError } from './errors.js';
import type { HttpClient } from './http.js';
import { parseAnswer } from './http.js';
import { JOB, LOG_END, LOG_ENTRY, LOGS } from './api/answers.js';
import type { ErrorBody, Job, LogEnd, LogEntry } from './api/types.js';
import { readSse } from './sse.js';
import { isTerminalStatus } from './status.js';

export interface FollowOptions {
  /** Only lines after this sequence number. */
  after?: number;
  signal?: AbortSignal;
  /** Called for each line as it arrives. */
  onLine?: (line: LogEntry) => void;
  /** Poll interval of the fallback (ms). */
  pollIntervalMs?: number;
  /** A stream silent this long (no line, no keep-alive) is reopened (ms, default 45000). */
  stallMs?: number;
}

const MAX_RECONNECTS = 5;

export function jobPath(id: string, suffix = ''): string {
  return `/api/v1/mags-jobs/${encodeURIComponent(id)}${suffix}`;
}

/** Follows a job's log until the job ends; returns the stream's end event. */
export async function followJob(http: HttpClient, id: string, opts: FollowOptions): Promise<LogEnd> {
  let after = opts.after;
  const emit = (line: LogEntry): void => {
    if (typeof line.seq === 'number') {
      if (after !== undefined && line.seq <= after) return;
      after = line.seq;
    }
    opts.onLine?.(line);
  };
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0) await sleep(Math.min(2000, 100 * 2 ** (attempt - 1)), opts.signal);
    const seenBefore = after;
    let res: Response;
    try {
      res = await http.openStream(jobPath(id, '/logs'), { follow: 1, after }, { signal: opts.signal });
    } catch (err) {
      if (err instanceof MagsError && !(err instanceof NotFoundError) && [405, 406, 501].includes(err.status)) {
        return pollJob(http, id, { ...opts, after }, emit);
      }
      throw err;
    }
    const type = res.headers.get('content-type') ?? '';
    if (!type.includes('text/event-stream') || !res.body) {
      await res.body?.cancel().catch(() => {});
      return pollJob(http, id, { ...opts, after }, emit);
    }
    try {
      for await (const ev of readSse(res.body, { idleMs: opts.stallMs ?? 45_000 })) {
        if (ev.event === 'log') emit(parseAnswer(LOG_ENTRY, JSON.parse(ev.data), 'log stream'));
        else if (ev.event === 'end') return parseAnswer(LOG_END, JSON.parse(ev.data), 'log stream end');
        else if (ev.event === 'error') {
          const body = JSON.parse(ev.data) as Partial<ErrorBody>;
          throw new MagsError(body.error ?? 'log stream failed', { code: body.code ?? 'INTERNAL_ERROR' });
        }
      }
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (err instanceof MagsError || attempt >= MAX_RECONNECTS) throw err;
    }
    if (opts.signal?.aborted) throw opts.signal.reason;
    // The stream closed without an end event: the job may have ended meanwhile, else reconnect.
    const job = await getJob(http, id, opts.signal);
    if (isTerminalStatus(job.status)) {
      await drain(http, id, after, emit, opts.signal);
      return { status: job.status, exit_code: job.exit_code, end_reason: job.end_reason, error_message: job.error_message };
    }
    if (attempt >= MAX_RECONNECTS) {
      throw new MagsError(`The log stream of job ${id} kept closing before the job ended`, { code: 'INVALID_RESPONSE' });
    }
    // A stream that delivered lines before it dropped is a fresh start, not a failing retry.
    if (after !== seenBefore) attempt = 0;
  }
}

/** Polling fallback: new lines via `?after=`, status until the job ends. */
async function pollJob(
  http: HttpClient,
  id: string,
  opts: FollowOptions,
  emit: (line: LogEntry) => void,
): Promise<LogEnd> {
  const interval = opts.pollIntervalMs ?? 300;
  let after = opts.after;
  let seen = 0;
  for (;;) {
    const job = await getJob(http, id, opts.signal);
    const logs = await http.request({
      method: 'GET',
      path: jobPath(id, '/logs'),
      query: { after },
      answer: LOGS,
      call: { signal: opts.signal },
    });
    // Servers without `seq` return the whole log each time: skip the lines already shown.
    const fresh = logs.logs.some((l) => typeof l.seq === 'number') ? logs.logs : logs.logs.slice(seen);
    seen = logs.logs.length;
    for (const line of fresh) {
      emit(line);
      if (typeof line.seq === 'number') after = line.seq;
    }
    // Status was read before the lines, so once it is final the lines above are complete.
    // A persistent job's sandbox outlives its script: its exit code marks the end of the output.
    if (isTerminalStatus(job.status) || job.status === 'sleeping' || (job.persistent && typeof job.exit_code === 'number')) {
      return { status: job.status, exit_code: job.exit_code, end_reason: job.end_reason, error_message: job.error_message };
    }
    await sleep(interval, opts.signal);
  }
}

async function drain(
  http: HttpClient,
  id: string,
  after: number | undefined,
  emit: (line: LogEntry) => void,
  signal?: AbortSignal,
): Promise<void> {
  const logs = await http.request({ method: 'GET', path: jobPath(id, '/logs'), query: { after }, answer: LOGS, call: { signal } });
  for (const line of logs.logs) emit(line);
}

export function getJob(http: HttpClient, id: string, signal?: AbortSignal, timeoutMs?: number): Promise<Job> {
  return http.request({ method: 'GET', path: jobPath(id, '/status'), answer: JOB, call: { signal, timeoutMs } });
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
