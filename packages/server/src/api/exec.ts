import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { StringDecoder } from 'node:string_decoder';
import type { ExecService } from '../services/exec.js';
import { MAX_EXEC_TIMEOUT_SECONDS } from '../services/exec.js';
import type { TerminalTickets } from '../services/terminal.js';
import { userOf } from './auth.js';
import { IdParams, errorResponses } from './schemas.js';

const ExecBody = z.object({
  command: z.string().min(1).max(1024 * 1024).describe('Run by /bin/bash -c in the sandbox'),
  timeout_seconds: z.number().int().min(1).max(MAX_EXEC_TIMEOUT_SECONDS).optional().describe('Wall-clock limit (default 300); on expiry the process group is killed, exit_code 124, timed_out true'),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment names are letters, digits and _'), z.string()).optional(),
  cwd: z.string().min(1).max(4096).optional().describe('Working directory (default /root)'),
  stdin: z.string().max(16 * 1024 * 1024).optional().describe('Written to the command\'s stdin, which is then closed (default: /dev/null)'),
});

const ExecQuery = z.object({ stream: z.enum(['0', '1', 'true', 'false']).optional().describe('1: answer as NDJSON events while the command runs') });

const ExecAnswer = z.object({
  exit_code: z.number().int().describe('The exit code; 124 on timeout, 128+n when killed by signal n'),
  output: z.string().describe('stdout as UTF-8 (invalid bytes replaced), at most 10 MiB'),
  stderr: z.string().describe('stderr as UTF-8, at most 10 MiB'),
  truncated: z.boolean().describe('True when a stream passed the cap and its tail was dropped'),
  timed_out: z.boolean(),
  duration_ms: z.number().int(),
});

const TicketAnswer = z.object({
  ticket: z.string().describe('Single-use; pass as ?ticket= to GET .../terminal within expires_in seconds'),
  expires_in: z.number().int(),
});

export interface ExecRoutesOptions {
  exec: ExecService;
  tickets: TerminalTickets;
}

/**
 * `POST /api/v1/mags-jobs/{id}/exec` (buffered or NDJSON-streamed) and the terminal ticket; the app
 * mirrors both under /api/v2.
 */
export const execRoutes: FastifyPluginAsyncZod<ExecRoutesOptions> = async (app, { exec, tickets }) => {
  app.post(
    '/api/v1/mags-jobs/:id/exec',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Run a command in a running, frozen or sleeping persistent sandbox (wakes it)',
        description:
          'Buffered: {exit_code, output, stderr, truncated, timed_out}. With ?stream=1 or Accept: application/x-ndjson: one JSON object per line, ' +
          '{"type":"stdout"|"stderr","data":"<utf-8>"} as output arrives, then {"type":"exit","exit_code","timed_out","duration_ms"} (or {"type":"error","error","code"}).',
        params: IdParams,
        querystring: ExecQuery,
        body: ExecBody,
        response: { 200: ExecAnswer, ...errorResponses },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const cmd = { command: b.command, timeoutSeconds: b.timeout_seconds, env: b.env, cwd: b.cwd, stdin: b.stdin };
      const abort = new AbortController();
      reply.raw.on('close', () => abort.abort());
      const streamed = request.query.stream === '1' || request.query.stream === 'true' || (request.headers.accept ?? '').includes('application/x-ndjson');
      if (!streamed) {
        const r = await exec.run(userOf(request), request.params.id, cmd, abort.signal);
        return { exit_code: r.exitCode, output: r.output, stderr: r.stderr, truncated: r.truncated, timed_out: r.timedOut, duration_ms: r.durationMs };
      }
      const raw = reply.raw;
      const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
      const line = (o: unknown) => raw.write(`${JSON.stringify(o)}\n`);
      // Back-pressure: a write the response cannot take pauses the command's output until it drains.
      let paused = false;
      const drained = () => {
        paused = false;
        running.resume();
      };
      // Errors before the command started (no job, not running) answer with their status as usual.
      const running = await exec.start(
        userOf(request),
        request.params.id,
        cmd,
        (stream, data) => {
          const text = decoders[stream].write(data);
          if (text && !line({ type: stream, data: text }) && !paused && !raw.destroyed) {
            paused = true;
            running.pause();
            raw.once('drain', drained);
          }
        },
        abort.signal,
      );
      abort.signal.addEventListener(
        'abort',
        () => {
          // Nobody reads any more: the command is killed and its last output let through to its end.
          raw.off('drain', drained);
          running.resume();
          running.cancel();
        },
        { once: true },
      );
      reply.hijack();
      raw.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'x-request-id': request.id, 'cache-control': 'no-store' });
      try {
        const end = await running.ended;
        for (const s of ['stdout', 'stderr'] as const) {
          const rest = decoders[s].end();
          if (rest) line({ type: s, data: rest });
        }
        line({ type: 'exit', exit_code: end.exitCode, timed_out: end.timedOut, duration_ms: end.durationMs });
      } catch (err) {
        const e = err as { message?: string; code?: string };
        line({ type: 'error', error: e.message ?? String(err), code: e.code ?? 'INTERNAL_ERROR' });
      }
      raw.end();
      return reply;
    },
  );

  app.post(
    '/api/v1/mags-jobs/:id/terminal-ticket',
    {
      schema: {
        tags: ['jobs'],
        summary: 'A short-lived ticket for the web terminal WebSocket (browsers cannot send headers on WebSockets; ours)',
        params: IdParams,
        response: { 200: TicketAnswer, ...errorResponses },
      },
    },
    async (request) => {
      const user = userOf(request);
      // Checks that the job exists and is the caller's before a ticket is handed out.
      const job = await exec.jobOf(user, request.params.id);
      return tickets.issue(user, job.request_id);
    },
  );
};
