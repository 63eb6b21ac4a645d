import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Readable, type Duplex } from 'node:stream';
import type { ErrorCode } from '@mags/shared';
import { ERROR_CODES, isTerminalStatus } from '@mags/shared';
import { createProxyServer, type ProxyServer } from 'http-proxy-3';
import type { Logger } from 'pino';
import type { LiveAttachment, LiveSandboxes } from '../sandboxes/live.js';
import { AppError } from '../services/errors.js';
import { URL_LOGIN_PATH, URL_SESSION_COOKIE, type UrlService } from '../services/urls.js';
import { labelOfHost } from './hosts.js';
import type { ProxyMetrics } from './metrics.js';
import { sendProxyError } from './pages.js';

export interface PublicProxyOptions {
  urls: Pick<UrlService, 'resolve' | 'authorize' | 'consumeLink'>;
  live: LiveSandboxes;
  /** Public URLs are `<label>.apps.<domain>`. */
  domain: string;
  /** Bound on waking a job and waiting for its app's port (ms). */
  wakeTimeoutMs: number;
  log: Logger;
  metrics?: ProxyMetrics;
  /** PEM certificate and key: serve HTTPS. */
  tls?: { cert: Buffer | string; key: Buffer | string };
}

/** A refusal before anything reaches a sandbox: the registry code, message and hint. */
interface Refusal {
  code: ErrorCode;
  message: string;
  hint?: string;
  headers?: Record<string, string>;
}

/** A request admitted to a sandbox: the attachment to release and where to send it. */
interface Admitted {
  attachment: LiveAttachment;
  target: string;
}

/**
 * The public-URL proxy: routes `<label>.apps.<domain>` to a port of a persistent job's sandbox
 * with http-proxy-3 (keep-alive, streamed bodies both ways, WebSockets, SSE). Each request
 * attaches to the job through LiveSandboxes (waking a sleeping or frozen one), waits bounded for
 * the app's port after a wake, and releases at the end of the response (a WebSocket holds its
 * attachment while open). Malformed or ambiguous requests get 400 before any routing.
 */
export class PublicProxy {
  readonly server: http.Server;
  private readonly proxy: ProxyServer;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 64, timeout: 60_000 });
  /** One connection per request: the retry after a stale kept-alive socket. */
  private readonly freshAgent = new http.Agent({ keepAlive: false, timeout: 60_000 });
  private readonly secure: boolean;

  constructor(private readonly o: PublicProxyOptions) {
    this.secure = !!o.tls;
    this.proxy = createProxyServer({ xfwd: false, ws: true, agent: this.agent, preserveHeaderKeyCase: true });
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.onRequest(req, res).catch((err: unknown) => {
        o.log.error({ err }, 'proxy request failed');
        this.count(sendProxyError(res, req.headers.accept, 'INTERNAL_ERROR', 'The proxy failed on this request.'));
      });
    };
    this.server = o.tls ? https.createServer({ cert: o.tls.cert, key: o.tls.key }, handler) : http.createServer(handler);
    // Slow senders of headers are cut off; bodies and answers (downloads, SSE) may take as long as they need.
    this.server.headersTimeout = 30_000;
    this.server.requestTimeout = 0;
    this.server.keepAliveTimeout = 65_000;
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.onUpgrade(req, socket as Socket, head).catch((err: unknown) => {
        o.log.error({ err }, 'proxy upgrade failed');
        rawError(socket, 500, 'INTERNAL_ERROR');
      });
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Node's parser refused the request (e.g. conflicting Content-Length and Transfer-Encoding).
      this.count(400);
      if (socket.writable && err.code !== 'ECONNRESET') rawError(socket, 400, 'BAD_REQUEST');
      else socket.destroy();
    });
  }

  /** Listens; resolves with the bound port. */
  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops listening and closes every connection (open WebSockets and downloads included). */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.agent.destroy();
    this.freshAgent.destroy();
    this.proxy.close();
  }

  private count(status: number): void {
    this.o.metrics?.countResponse(status);
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const refused = checkRequest(req);
    const host = req.headers.host;
    if (refused) return this.refuse(req, res, refused);
    const parsed = labelOfHost(host, this.o.domain);
    if ('bad' in parsed) return this.refuse(req, res, { code: 'BAD_REQUEST', message: `Bad request: ${parsed.bad}.` });
    if ('foreign' in parsed) return this.refuse(req, res, notFound(host!));
    const path = req.url!.split('?')[0]!;
    if (path === URL_LOGIN_PATH) return this.login(req, res, parsed.label);

    const abort = new AbortController();
    const onClose = () => abort.abort();
    res.once('close', onClose);
    const admitted = await this.admit(req, parsed.label, abort.signal);
    res.off('close', onClose);
    if ('code' in admitted) return this.refuse(req, res, admitted);
    const { attachment, target } = admitted;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      attachment.release();
      this.o.live.touch(attachment.job.request_id);
    };
    res.once('close', () => {
      this.count(res.statusCode);
      release();
    });
    if (res.destroyed) return release();
    // A kept-alive connection the app closed just as it was reused fails with ECONNRESET before
    // any answer; a request without a body is sent once more on a fresh connection.
    let retried = false;
    const onError = (err: NodeJS.ErrnoException) => {
      if (!retried && !res.headersSent && !res.destroyed && (err.code === 'ECONNRESET' || err.code === 'EPIPE') && bodiless(req)) {
        retried = true;
        // A fresh connection (not the agent's pool, which may hand out another stale socket).
        this.proxy.web(req, res, { target, buffer: Readable.from([]), agent: this.freshAgent }, onError);
        return;
      }
      this.o.log.warn({ code: err.code, target, woke: attachment.woke, retried }, 'app connection failed');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const refusal = upstreamRefusal(err);
      sendProxyError(res, req.headers.accept, refusal.code, refusal.message, refusal.hint);
    };
    this.proxy.web(req, res, { target }, onError);
  }

  private async onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const refused = checkRequest(req);
    if (refused) {
      this.count(400);
      return rawError(socket, 400, refused.code);
    }
    const parsed = labelOfHost(req.headers.host, this.o.domain);
    if (!('label' in parsed)) {
      const code = 'bad' in parsed ? 'BAD_REQUEST' : 'URL_NOT_FOUND';
      this.count(ERROR_CODES[code].status);
      return rawError(socket, ERROR_CODES[code].status, code);
    }
    const abort = new AbortController();
    const onClose = () => abort.abort();
    socket.once('close', onClose);
    const admitted = await this.admit(req, parsed.label, abort.signal);
    socket.off('close', onClose);
    if ('code' in admitted) {
      const status = ERROR_CODES[admitted.code].status;
      this.count(status);
      return rawError(socket, status, admitted.code, admitted.headers);
    }
    const { attachment, target } = admitted;
    this.count(101);
    let released = false;
    socket.once('close', () => {
      if (released) return;
      released = true;
      attachment.release();
      this.o.live.touch(attachment.job.request_id);
    });
    if (socket.destroyed) {
      released = true;
      attachment.release();
      return;
    }
    this.proxy.ws(req, socket, head, { target }, (err: NodeJS.ErrnoException) => {
      const refusal = upstreamRefusal(err);
      rawError(socket, ERROR_CODES[refusal.code].status, refusal.code);
    });
  }

  /** Resolves, authorizes and attaches: the sandbox target, or why not. */
  private async admit(req: IncomingMessage, label: string, signal: AbortSignal): Promise<Admitted | Refusal> {
    const resolved = await this.o.urls.resolve(label);
    if (!resolved) return notFound(req.headers.host!);
    const { route, job } = resolved;
    const auth = await this.o.urls.authorize(route, req.headers.authorization, req.headers.cookie);
    if (auth !== 'ok') {
      const messages = {
        AUTH_REQUIRED: 'This URL is private: send the owner\'s API token as "Authorization: Bearer <token>", or open a login link from `mags url --private`.',
        INVALID_TOKEN: 'This URL is private and the API token sent is unknown or revoked.',
        FORBIDDEN: 'This URL is private to its owner; the API token sent belongs to another user.',
      } as const;
      return { code: auth, message: messages[auth], headers: auth === 'FORBIDDEN' ? {} : { 'www-authenticate': 'Bearer realm="mags"' } };
    }
    // The stored status decides (the lifecycle manager knows a sleeping job only once it is used).
    if (!job || isTerminalStatus(job.status)) {
      return route.kind === 'alias'
        ? { code: 'JOB_ENDED', message: `No job runs or sleeps on workspace "${route.workspace_id}" now.`, hint: `Start one: mags run -w ${route.workspace_id} -p --url '<your app>'.` }
        : { code: 'JOB_ENDED', message: 'The job behind this URL has ended.', hint: 'Start the workspace again with mags run -w <workspace> -p; a URL alias follows the new job.' };
    }
    const deadline = Date.now() + this.o.wakeTimeoutMs;
    let attachment: LiveAttachment;
    try {
      attachment = await this.o.live.attach(job, 'proxy', { signal, timeoutMs: this.o.wakeTimeoutMs });
    } catch (err) {
      const code = (err as AppError).code as string | undefined;
      if (code === 'JOB_NOT_RUNNING') return { code: 'JOB_ENDED', message: 'The job behind this URL has ended.' };
      if (code === 'SANDBOX_START_TIMEOUT') return wakeTimeout(this.o.wakeTimeoutMs);
      if (err instanceof AppError) return { code: 'APP_NOT_LISTENING', message: `The job behind this URL could not be woken: ${err.message}` };
      throw err;
    }
    const ip = attachment.sandbox.ipAddress;
    if (!ip) {
      attachment.release();
      return { code: 'APP_NOT_LISTENING', message: 'The sandbox behind this URL has no network address.' };
    }
    if (attachment.woke !== 'no' && !(await waitForPort(ip, route.port, deadline, signal))) {
      attachment.release();
      return wakeTimeout(this.o.wakeTimeoutMs);
    }
    prepareHeaders(req, this.secure, route.auth === 'token');
    return { attachment, target: `http://${ip}:${route.port}` };
  }

  /** `GET /__mags/login?token=...`: uses up a one-time link and sets the session cookie for this host. */
  private login(req: IncomingMessage, res: ServerResponse, label: string): void {
    const token = new URL(req.url!, 'http://x').searchParams.get('token') ?? '';
    const got = req.method === 'GET' ? this.o.urls.consumeLink(label, token) : null;
    if (!got) {
      return this.refuse(req, res, { code: 'FORBIDDEN', message: 'This login link is unknown, used or expired.', hint: 'Print a new one with mags url --private <name> [port].' });
    }
    const cookie = `${URL_SESSION_COOKIE}=${got.session}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${got.maxAgeSeconds}${this.secure || req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : ''}`;
    res.writeHead(302, { location: '/', 'set-cookie': cookie, 'cache-control': 'no-store', 'content-length': 0 });
    res.end();
    this.count(302);
  }

  private refuse(req: IncomingMessage, res: ServerResponse, r: Refusal): void {
    // After a malformed request the connection's framing cannot be trusted: answer and close.
    const headers = r.code === 'BAD_REQUEST' ? { ...r.headers, connection: 'close' } : r.headers;
    this.count(sendProxyError(res, req.headers.accept, r.code, r.message, r.hint, headers));
  }
}

/**
 * Refuses what could be read two ways by the proxy and the app behind it: an absolute-form or
 * otherwise non-origin target, a Host header given twice, Content-Length given twice or together
 * with Transfer-Encoding, and any Transfer-Encoding other than `chunked`.
 */
export function checkRequest(req: IncomingMessage): Refusal | null {
  const bad = (why: string): Refusal => ({ code: 'BAD_REQUEST', message: `Bad request: ${why}.` });
  if (!req.url || !req.url.startsWith('/') || req.url.startsWith('//')) return bad('the request target must be a path (origin form)');
  let hosts = 0;
  let lengths = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    if (name === 'host') hosts++;
    else if (name === 'content-length') lengths++;
  }
  if (hosts !== 1) return bad(hosts === 0 ? 'the request has no Host header' : 'the Host header appears more than once');
  const te = req.headers['transfer-encoding'];
  if (lengths > 1) return bad('Content-Length appears more than once');
  if (te !== undefined && lengths > 0) return bad('Content-Length and Transfer-Encoding are both present');
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') return bad(`Transfer-Encoding "${te}" is not supported (only chunked)`);
  return null;
}

/**
 * Forwarded headers: the client's address appended to X-Forwarded-For; X-Forwarded-Proto `https`
 * over the proxy's own TLS, else the value a fronting proxy (Caddy) set, else `http`;
 * X-Forwarded-Host the Host this request was routed by. Mags credentials are removed.
 */
function prepareHeaders(req: IncomingMessage, secure: boolean, tokenMode: boolean): void {
  const prior = req.headers['x-forwarded-for'];
  const client = req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '';
  req.headers['x-forwarded-for'] = prior ? `${prior}, ${client}` : client;
  const proto = req.headers['x-forwarded-proto'];
  req.headers['x-forwarded-proto'] = secure ? 'https' : proto === 'https' || proto === 'http' ? proto : 'http';
  req.headers['x-forwarded-host'] = req.headers.host;
  delete req.headers['x-forwarded-port'];
  if (tokenMode) {
    delete req.headers.authorization;
    const cookie = req.headers.cookie;
    if (cookie) {
      const rest = cookie.split(';').filter((p) => p.split('=')[0]!.trim() !== URL_SESSION_COOKIE).join(';').trim();
      if (rest) req.headers.cookie = rest;
      else delete req.headers.cookie;
    }
  }
}

/** A request that carries no body (safe to send again). */
function bodiless(req: IncomingMessage): boolean {
  const method = req.method ?? 'GET';
  return (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') && req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] ?? '0') === '0';
}

function notFound(host: string): Refusal {
  return { code: 'URL_NOT_FOUND', message: `No app is published at ${host.slice(0, 200)}.`, hint: 'Enable a URL with mags url <name> [port], or check the address.' };
}

function wakeTimeout(ms: number): Refusal {
  return { code: 'APP_WAKE_TIMEOUT', message: `The app did not start accepting connections within ${Math.round(ms / 1000)} s of waking its job.`, hint: 'Check the job\'s startup_command with mags status and mags logs, then reload.' };
}

function upstreamRefusal(err: NodeJS.ErrnoException): Refusal {
  if (err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') {
    return { code: 'APP_NOT_LISTENING', message: 'The job runs, but nothing in its sandbox accepts connections on this URL\'s port.', hint: 'Start the app listening on 0.0.0.0 and that port, e.g. python3 -m http.server 8080.' };
  }
  return { code: 'APP_NOT_LISTENING', message: `The app closed the connection without an answer (${err.code ?? err.message}).` };
}

/** Retries a TCP connect with a small backoff until it succeeds (true) or the deadline passes (false). */
export async function waitForPort(host: string, port: number, deadline: number, signal?: AbortSignal): Promise<boolean> {
  let delay = 10;
  while (!signal?.aborted) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      const timer = setTimeout(() => {
        s.destroy();
        resolve(false);
      }, Math.min(left, 1000));
      s.once('connect', () => {
        clearTimeout(timer);
        s.destroy();
        resolve(true);
      });
      s.once('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
    delay = Math.min(delay * 2, 200);
  }
  return false;
}

/** A minimal HTTP error answer on a raw socket (upgrades, parser errors), then close. */
function rawError(socket: Duplex, status: number, code: string, headers: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: http.STATUS_CODES[status] ?? 'Error', code });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n${extra}\r\n${body}`);
}
