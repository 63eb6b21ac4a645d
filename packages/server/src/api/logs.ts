import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { JobsService } from '../services/jobs.js';
import type { JobEvent } from '../services/job-logs.js';
import { userOf } from './auth.js';
import { IdParams, LogsAnswer, LogsQuery, errorResponses, presentLog } from './schemas.js';

export interface LogRoutesOptions {
  jobs: JobsService;
  /** Seconds between SSE keep-alive comments. */
  heartbeatSeconds?: number;
  stallMs?: number;
}

/**
 * GET /api/v1/mags-jobs/{id}/logs: the Mags logs answer, or with `?follow=1` (or
 * `Accept: text/event-stream`) Server-Sent Events: `event: log` per line, then `event: end`.
 */
export const logRoutes: FastifyPluginAsyncZod<LogRoutesOptions> = async (app, { jobs, heartbeatSeconds = 15 }) => {
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
      const lastEventId = Number(request.headers['last-event-id']);
      const after = q.after ?? (Number.isSafeInteger(lastEventId) && lastEventId > 0 ? lastEventId : 0);
      if (!follow) {
        const { lines } = await jobs.readLogs(user, request.params.id, after, q.limit ?? Number.MAX_SAFE_INTEGER);
        return { logs: lines.map(presentLog) };
      }

      const job = await jobs.get(user, request.params.id); // 404 as JSON before the stream starts
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-request-id': String(request.id),
      });
      raw.write(': following job ' + job.request_id + '\n\n');
      let closed = false;
      let unsubscribe: (() => void) | undefined;
      const heartbeat = setInterval(() => {
        if (!closed) raw.write(': ping\n\n');
      }, heartbeatSeconds * 1000);
      heartbeat.unref();
      const close = () => {
        if (closed) return;
        closed = true;
        clearInterval(heartbeat);
        unsubscribe?.();
        raw.end();
      };
      raw.on('close', close);
      raw.on('error', close);
      const send = (e: JobEvent) => {
        if (closed) return;
        if (e.type === 'log') {
          raw.write(`id: ${e.line.seq}\nevent: log\ndata: ${JSON.stringify(presentLog(e.line))}\n\n`);
        } else if (e.type === 'end') {
          raw.write(`event: end\ndata: ${JSON.stringify({ status: e.status, exit_code: e.exit_code, error_message: e.error_message })}\n\n`);
          close();
        } else {
          close();
        }
      };
      try {
        unsubscribe = await jobs.follow(user, job.request_id, after, send);
        if (closed) unsubscribe();
      } catch (err) {
        request.log.error({ err }, 'log follow failed');
        if (!closed) raw.write(`event: error\ndata: ${JSON.stringify({ error: 'could not follow the job output', code: 'INTERNAL_ERROR' })}\n\n`);
        close();
      }
    },
  );
};
