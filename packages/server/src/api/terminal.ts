import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { SandboxProcess } from '../runtime/driver.js';
import { AppError } from '../services/errors.js';
import type { ExecService } from '../services/exec.js';
import type { TerminalTickets } from '../services/terminal.js';
import type { User } from '../services/types.js';
import type { UsersService } from '../services/users.js';

export interface TerminalRoutesOptions {
  exec: ExecService;
  tickets: TerminalTickets;
  users: UsersService;
}

const SIGHUP = 1;
const SIGKILL = 9;
/** How long a hung-up shell may take to exit before it is killed. */
const HANGUP_GRACE_MS = 2000;
/** Terminal output the socket may hold unsent before the shell's output is paused. */
const SOCKET_HIGH_BYTES = 256 * 1024;
/** Largest control or input message a client may send. */
const MAX_MESSAGE_BYTES = 1024 * 1024;

declare module 'fastify' {
  interface FastifyRequest {
    /** The terminal's caller and, with a ticket, the job the ticket was issued for. */
    terminalAuth?: { user: User; jobId?: string };
  }
}

/**
 * `GET /api/v{1,2}/mags-jobs/{id}/terminal`: a WebSocket to a login shell on a PTY in the job's
 * sandbox (docs/api.md, "Web terminal"). Authenticated by `Authorization: Bearer` or a single-use
 * `?ticket=` from `POST .../terminal-ticket`. Binary frames carry terminal bytes both ways; text
 * frames are JSON control messages (`{"type":"resize","cols","rows"}` in, `{"type":"exit",...}` out).
 */
export async function terminalRoutes(app: FastifyInstance, { exec, tickets, users }: TerminalRoutesOptions): Promise<void> {
  const authenticate = async (request: FastifyRequest) => {
    const ticket = (request.query as Record<string, unknown>).ticket;
    if (typeof ticket === 'string' && ticket !== '') {
      const t = tickets.redeem(ticket);
      if (!t) throw new AppError('INVALID_TOKEN', 'The terminal ticket is unknown, used or expired', 'Get a new one with POST /api/v1/mags-jobs/{id}/terminal-ticket.');
      request.terminalAuth = t;
    } else {
      request.terminalAuth = { user: await users.authenticate(request.headers.authorization) };
    }
  };

  for (const version of [1, 2] as const) {
    app.get(
      `/api/v${version}/mags-jobs/:id/terminal`,
      { websocket: true, onRequest: authenticate, schema: { hide: true } },
      (socket: WebSocket, request: FastifyRequest) => {
        void serveTerminal(socket, request, exec).catch((err: Error) => {
          request.log.warn({ err }, 'terminal session failed');
          closeWithError(socket, err);
        });
      },
    );
  }
}

async function serveTerminal(socket: WebSocket, request: FastifyRequest, exec: ExecService): Promise<void> {
  const auth = request.terminalAuth!;
  const ref = (request.params as { id: string }).id;
  const q = request.query as Record<string, string | undefined>;
  const cols = clampSize(q.cols, 80);
  const rows = clampSize(q.rows, 24);
  const abort = new AbortController();
  socket.on('close', () => abort.abort());
  const job = await exec.jobOf(auth.user, ref);
  if (auth.jobId !== undefined && auth.jobId !== job.request_id) throw new AppError('FORBIDDEN', 'The terminal ticket was issued for another job');
  const att = await exec.attach(auth.user, job.request_id, 'terminal', abort.signal);
  let proc: SandboxProcess | undefined;
  try {
    if (socket.readyState !== socket.OPEN) return;
    if (!att.sandbox.spawn) throw new AppError('FEATURE_NOT_AVAILABLE', 'the terminal needs a runtime driver that can spawn processes');
    // Back-pressure: past SOCKET_HIGH_BYTES not yet sent to the browser the shell's output is paused
    // until the socket has flushed what it holds (the send callback runs once a frame went out).
    let paused = false;
    const sent = () => {
      if (paused && socket.bufferedAmount < SOCKET_HIGH_BYTES) {
        paused = false;
        proc?.resume?.();
      }
    };
    proc = att.sandbox.spawn({ argv: ['/bin/bash', '-l'], env: { TERM: 'xterm-256color' }, pty: { cols, rows } }, (_stream, data) => {
      if (socket.readyState !== socket.OPEN) return;
      socket.send(data, { binary: true }, sent);
      if (!paused && socket.bufferedAmount >= SOCKET_HIGH_BYTES) {
        paused = true;
        proc?.pause?.();
      }
    });
    const p = proc;
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      const b = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (b.length > MAX_MESSAGE_BYTES) return socket.close(1009, 'message too large');
      if (isBinary) return p.write(b);
      const msg = parseControl(b.toString());
      if (msg?.type === 'resize') p.resize(msg.cols, msg.rows);
      else if (msg?.type === 'input') p.write(msg.data);
      else socket.send(JSON.stringify({ type: 'error', error: 'unknown control message; send {"type":"resize","cols":N,"rows":N} as text, input as binary frames' }));
    });
    // A hang-up ends a login shell; one that ignores it (or was not running yet when the hang-up
    // came) is killed, so a closed terminal never keeps the sandbox's attachment.
    let ended = false;
    socket.on('close', () => {
      // Nothing reads any more: let the shell's last output drain so it can end.
      p.resume?.();
      p.kill(SIGHUP);
      setTimeout(() => {
        if (!ended) p.kill(SIGKILL);
      }, HANGUP_GRACE_MS).unref();
    });
    const exit = await p.exited.finally(() => (ended = true));
    if (socket.readyState === socket.OPEN) {
      socket.send(JSON.stringify({ type: 'exit', exit_code: exit.code, signal: exit.signal }));
      socket.close(1000, 'shell exited');
    }
  } finally {
    att.release();
  }
}

function clampSize(v: string | undefined, dflt: number): number {
  const n = Number(v);
  return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : dflt;
}

type Control = { type: 'resize'; cols: number; rows: number } | { type: 'input'; data: string };

function parseControl(text: string): Control | undefined {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return undefined; // not JSON: answered as an unknown control message
  }
  if (typeof m !== 'object' || m === null) return undefined;
  const o = m as Record<string, unknown>;
  if (o.type === 'resize' && Number.isInteger(o.cols) && Number.isInteger(o.rows)) {
    const cols = o.cols as number;
    const rows = o.rows as number;
    if (cols >= 1 && cols <= 1000 && rows >= 1 && rows <= 1000) return { type: 'resize', cols, rows };
  }
  if (o.type === 'input' && typeof o.data === 'string') return { type: 'input', data: o.data };
  return undefined;
}

function closeWithError(socket: WebSocket, err: Error): void {
  if (socket.readyState !== socket.OPEN) return;
  const e = err as Error & { code?: string };
  socket.send(JSON.stringify({ type: 'error', error: e.message, code: e.code ?? 'INTERNAL_ERROR' }));
  socket.close(1011, (e.code ?? 'error').slice(0, 100));
}
