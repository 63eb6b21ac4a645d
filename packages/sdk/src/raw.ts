/**
 * A job's raw output (`GET /mags-jobs/{id}/logs?format=raw`): the bytes exactly as the script
 * wrote them. Both streams come as frames of `application/vnd.mags.stream`: an 8-byte header
 * (type: 1 stdout, 2 stderr, 3 system, 4 end; three zero bytes; big-endian payload length), then
 * the payload; the `end` frame, sent when following, holds the outcome JSON.
 */
import { MagsError } from './errors.js';
import type { HttpClient } from './http.js';
import { parseAnswer } from './http.js';
import { LOG_END } from './api/answers.js';
import type { LogEnd } from './api/types.js';
import { jobPath } from './follow.js';

/** One piece of raw output, or the end of a followed job. */
export type RawOutput = { stream: 'stdout' | 'stderr' | 'system'; data: Uint8Array } | { end: LogEnd };

/** The content type of framed raw output. */
export const RAW_STREAM_TYPE = 'application/vnd.mags.stream';

const FRAME_STREAMS = { 1: 'stdout', 2: 'stderr', 3: 'system' } as const;

/**
 * Yields a job's raw output frames; with `follow` until the job ends (the last item is `{ end }`).
 * Throws `MagsError` with code `FEATURE_NOT_AVAILABLE` when the server has no raw form (a Mags
 * server): callers fall back to lines.
 */
export async function* readRaw(http: HttpClient, id: string, opts: { follow?: boolean; signal?: AbortSignal }): AsyncGenerator<RawOutput> {
  const res = await http.openStream(jobPath(id, '/logs'), { format: 'raw', stream: 'both', follow: opts.follow ? 1 : 0 }, { signal: opts.signal });
  const type = res.headers.get('content-type') ?? '';
  if (!type.startsWith(RAW_STREAM_TYPE) || !res.body) {
    await res.body?.cancel().catch(() => {});
    throw new MagsError('This server does not offer raw job output', { code: 'FEATURE_NOT_AVAILABLE' });
  }
  let buf = new Uint8Array(0);
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf = buf.length === 0 ? value : concat(buf, value);
      let pos = 0;
      while (buf.length - pos >= 8) {
        const kind = buf[pos]!;
        const len = ((buf[pos + 4]! << 24) >>> 0) + (buf[pos + 5]! << 16) + (buf[pos + 6]! << 8) + buf[pos + 7]!;
        if (buf.length - pos - 8 < len) break;
        const payload = buf.subarray(pos + 8, pos + 8 + len);
        pos += 8 + len;
        if (kind === 4) {
          yield { end: parseAnswer(LOG_END, JSON.parse(new TextDecoder().decode(payload)), 'raw log end') };
          return;
        }
        const stream = FRAME_STREAMS[kind as 1 | 2 | 3];
        if (!stream) throw new MagsError(`Unknown raw output frame type ${kind}`, { code: 'INVALID_RESPONSE' });
        yield { stream, data: payload };
      }
      buf = buf.subarray(pos);
    }
    if (buf.length > 0) throw new MagsError('The raw output stream ended inside a frame', { code: 'INVALID_RESPONSE' });
  } finally {
    reader.releaseLock();
    await res.body.cancel().catch(() => {});
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** An async iterable of bytes as a pull-based web stream (read only as fast as it is sent). */
export function toStream(src: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = src[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await it.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel() {
      await it.return?.();
    },
  });
}
