import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { outcomeOf } from '../services/job-logs.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../services/errors.js';
import type { JobsService } from '../services/jobs.js';
import type { RawFeed } from '../services/raw-feed.js';
import { Readable } from 'node:stream';
import type { LogLine } from '../services/types.js';
import { userOf } from './auth.js';
import { IdParams, LogsAnswer, LogsQuery, errorResponses, presentLog } from './schemas.js';
import { SseWriter } from './sse.js';

export interface LogRoutesOptions {
  jobs: JobsService;
  /** Seconds between SSE keep-alive comments. */
  heartbeatSeconds?: number;
  /** Longest a follower's socket may accept nothing before its stream is cut off with `event: behind` (ms). */
  stallMs?: number;
}

/** Lines read from the store at once for the JSON answer. */
const LOG_PAGE_LINES = 1000;

/**
 * GET /api/v1/mags-jobs/{id}/logs: the Mags logs answer, or with `?follow=1` (or
 * `Accept: text/event-stream`) Server-Sent Events: `event: log` per line, then `event: end`.
 */
export const logRoutes: FastifyPluginAsyncZod<LogRoutesOptions> = async (app, { jobs, heartbeatSeconds = 15, stallMs = 60_000 }) => {
  app.get(
    '/api/v1/mags-jobs/:id/logs',
    {
      schema: {
        tags: ['jobs'],
        summary: "One job's output lines (JSON, or Server-Sent Events with follow=1)",
        params: IdParams,
        querystring: LogsQuery,
        response: { 200: LogsAnswer, ...errorResponses },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      const q = request.query;
      const accept = request.headers.accept ?? '';
      const follow = q.follow === '1' || q.follow === 'true' || (q.follow === undefined && accept.includes('text/event-stream'));
      if (q.format === 'raw') {
        if (q.after !== undefined || q.limit !== undefined || q.tail !== undefined) {
          throw new AppError('VALIDATION_ERROR', 'after, limit and tail count lines: they do not apply to format=raw', 'Leave them out, or read lines with format=json.');
        }
        const one = q.stream === 'stdout' || q.stream === 'stderr' ? q.stream : undefined;
        return sendRaw(request, reply, await jobs.raw(user, request.params.id, { stream: one, follow }), one === undefined, stallMs);
      }
      if (q.stream !== undefined) {
        throw new AppError('VALIDATION_ERROR', 'stream applies to format=raw only', 'Add format=raw, or filter the lines by their stream field.');
      }
      const lastEventId = Number(request.headers['last-event-id']);
      const after = q.after ?? (Number.isSafeInteger(lastEventId) && lastEventId > 0 ? lastEventId : 0);
      if (!follow) {
        // Streamed page by page: a long log is never held whole, and a slow client pauses the reads.
        const pages = await jobs.logPages(user, request.params.id, after, q.limit ?? Number.MAX_SAFE_INTEGER, LOG_PAGE_LINES, q.tail);
        reply.type('application/json; charset=utf-8');
        return reply.send(Readable.from(logsJson(pages)) as never);
      }

      if (q.tail !== undefined) throw new AppError('VALIDATION_ERROR', 'tail does not apply to follow=1', 'Read the last lines with tail=n, then follow with after=<the last seq>.');
      const feed = await jobs.follow(user, request.params.id, after); // 404 as JSON before the stream starts
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-request-id': String(request.id),
      });
      const sse = new SseWriter(raw, { heartbeatMs: heartbeatSeconds * 1000, stallMs });
      sse.onClose(() => feed.close());
      // Shutdown ends the stream without `end` at once, even while a send waits for the socket.
      feed.onShutdown(() => sse.end(undefined, SHUTDOWN_GRACE_MS));
      raw.write(': following job ' + feed.jobId + '\n\n');
      let sent = after;
      try {
        for (let open = true; open; ) {
          const item = await feed.next();
          if (item.type === 'lines') {
            open = await sendLines(sse, item.lines, (seq) => (sent = seq));
          } else {
            if (item.type === 'end') {
              sse.end(`event: end\ndata: ${JSON.stringify(outcomeOf(item))}\n\n`);
            }
            open = false;
          }
        }
        if (sse.stalled) {
          request.log.info({ jobId: feed.jobId, after: sent, stallMs }, 'log follower read nothing for too long; stream cut off');
          const behind = { after: sent, reason: `the client read nothing for ${stallMs} ms; reconnect with after=${sent} or Last-Event-ID` };
          sse.end(`id: ${sent}\nevent: behind\ndata: ${JSON.stringify(behind)}\n\n`);
        }
      } catch (err) {
        request.log.error({ err }, 'log follow failed');
        sse.end(`event: error\ndata: ${JSON.stringify({ error: 'could not follow the job output', code: 'INTERNAL_ERROR' })}\n\n`);
      } finally {
        feed.close();
        sse.end();
      }
    },
  );
};

/** Frame types of application/vnd.mags.stream: an 8-byte header (type, 3 zero bytes, big-endian length), then the payload. */
export const RAW_FRAME = { stdout: 1, stderr: 2, system: 3, end: 4 } as const;

function frame(type: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head[0] = type;
  head.writeUInt32BE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

/**
 * Writes a raw feed: one stream's bytes as they are, or every stream as frames (and, when
 * following, an `end` frame with the outcome JSON). Waits for the socket between pages; a client
 * that reads nothing for `stallMs` is cut off.
 */
async function sendRaw(request: FastifyRequest, reply: FastifyReply, feed: RawFeed, framed: boolean, stallMs: number): Promise<void> {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'content-type': framed ? 'application/vnd.mags.stream' : 'application/octet-stream',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
    'x-request-id': String(request.id),
  });
  // Headers now: the client learns the answer's form before the first byte of output.
  raw.flushHeaders();
  // A followed job may print nothing for minutes (a raw answer has no keep-alive comments).
  if (feed.following) raw.socket?.setTimeout?.(0);
  const out = new SseWriter(raw, { heartbeatMs: 0, stallMs });
  out.onClose(() => feed.close());
  feed.onShutdown(() => out.end(undefined, SHUTDOWN_GRACE_MS));
  try {
    for (let open = true; open; ) {
      const item = await feed.next();
      if (item.type === 'data') {
        const bytes = framed ? Buffer.concat(item.parts.map((p) => frame(RAW_FRAME[p.stream], p.data))) : Buffer.concat(item.parts.map((p) => p.data));
        open = await out.send(bytes);
      } else {
        if (item.type === 'end' && framed) out.end(frame(RAW_FRAME.end, Buffer.from(JSON.stringify(outcomeOf(item)))));
        open = false;
      }
    }
    if (out.stalled) request.log.info({ jobId: feed.jobId, stallMs }, 'raw log reader read nothing for too long; stream cut off');
  } catch (err) {
    request.log.error({ err }, 'raw log stream failed');
    raw.destroy();
  } finally {
    feed.close();
    out.end();
  }
}

/** How long a stream cut by a server shutdown may take to reach a client that reads nothing. */
const SHUTDOWN_GRACE_MS = 1000;

/** Bytes of SSE gathered into one socket write. */
const WRITE_CHUNK = 16 * 1024;

/** Writes lines as `log` events in socket-sized chunks, waiting for the socket between chunks. */
async function sendLines(sse: SseWriter, lines: readonly LogLine[], wrote: (seq: number) => void): Promise<boolean> {
  let chunk = '';
  let lastSeq = 0;
  for (const line of lines) {
    chunk += `id: ${line.seq}\nevent: log\ndata: ${JSON.stringify(presentLog(line))}\n\n`;
    lastSeq = line.seq;
    if (chunk.length >= WRITE_CHUNK) {
      const more = await sse.send(chunk);
      wrote(lastSeq);
      if (!more) return false;
      chunk = '';
    }
  }
  if (chunk === '') return true;
  const more = await sse.send(chunk);
  wrote(lastSeq);
  return more;
}

/** The Mags logs answer, `{"logs":[...]}`, produced one store page at a time. */
async function* logsJson(pages: AsyncIterable<LogLine[]>): AsyncGenerator<string> {
  yield '{"logs":[';
  let first = true;
  for await (const page of pages) {
    const items = page.map((l) => JSON.stringify(presentLog(l))).join(',');
    yield first ? items : ',' + items;
    first = false;
  }
  yield ']}';
}
