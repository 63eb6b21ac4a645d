import { ERROR_CODES, type ErrorBody, type ErrorCode } from '@mags/shared';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { AppError } from '../services/errors.js';

/** Sends one error body of the registry: `{"error", "code", "hint"?}` with the code's status. */
export function sendError(reply: FastifyReply, code: ErrorCode, message: string, hint?: string): FastifyReply {
  const body: ErrorBody = { error: message, code };
  if (hint) body.hint = hint;
  return reply.code(ERROR_CODES[code].status).type('application/json; charset=utf-8').send(body);
}

/** Fastify's own error codes that map to a registry code with a message that says what to do. */
const FASTIFY_CODES: Record<string, { code: ErrorCode; message: string; hint?: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'UNSUPPORTED_MEDIA_TYPE',
    message: 'The request body must be JSON sent with "Content-Type: application/json"',
  },
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: 'PAYLOAD_TOO_LARGE',
    message: 'The request body is larger than the server accepts',
    hint: 'Scripts may be up to 1 MiB; fetch larger data from inside the script.',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'VALIDATION_ERROR', message: 'request body: Required (send a JSON object)' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'VALIDATION_ERROR', message: 'The Content-Length header does not match the body' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'INVALID_JSON', message: 'The request body is not valid JSON' },
};

const STATUS_CODES: Record<number, ErrorCode> = {
  400: 'VALIDATION_ERROR',
  401: 'AUTH_REQUIRED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
  503: 'SERVICE_UNAVAILABLE',
};

/**
 * Errors Fastify answers before routing, outside the error handler (Fastify's `frameworkErrors`):
 * they get the registry shape and `x-request-id` like every other answer.
 */
export function answerFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.header('x-request-id', request.id);
  const path = request.url.split('?')[0]!.slice(0, 200);
  if (err.code === 'FST_ERR_BAD_URL') {
    return sendError(reply, 'VALIDATION_ERROR', `The path ${path} is not valid percent-encoding`, 'Encode a literal "%" in a path as "%25".');
  }
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return sendError(reply, 'NOT_FOUND', `No endpoint ${request.method} ${path}`, 'See /openapi.json or docs/api.md for the endpoints.');
  }
  request.log.error({ err }, 'request failed before routing');
  return sendError(reply, 'INTERNAL_ERROR', `Internal server error (request id ${request.id})`, 'The server log has the details under this request id.');
}

/** HTTP reason phrases of the answers `answerClientError` writes. */
const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/**
 * Errors Node's HTTP parser meets before Fastify sees a request (the server's 'clientError'):
 * headers over the size limit, malformed HTTP, a client too slow to send its request. They get the
 * registry shape and an `x-request-id` too, written on the socket, which then closes. Logged at
 * info: the client's mistake, not the server's.
 */
export function answerClientError(err: Error & { code?: string }, socket: Duplex, log: { info(obj: object, msg: string): void }): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [code, message, hint]: [ErrorCode, string, string] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? ['HEADERS_TOO_LARGE', 'The request headers are larger than this server accepts', 'Send fewer or shorter headers.']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT'
        ? ['REQUEST_TIMEOUT', 'The request was not sent in time', 'Send the whole request within 120 s; stream large data as a job stdin or file upload.']
        : ['VALIDATION_ERROR', 'The request is not valid HTTP/1.1', 'Check the client: the request line or a header could not be parsed.'];
  const id = randomUUID();
  const status = ERROR_CODES[code].status;
  const body = JSON.stringify({ error: message, code, hint } satisfies ErrorBody);
  log.info({ reqId: id, code, parserError: err.code }, 'request refused before routing');
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${id}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** A route's path pattern (`/api/v1/mags-jobs/:id/logs`) as a regex over concrete paths. */
function routePattern(url: string): RegExp {
  const parts = url.replace(/\/+$/, '').split('/').map((seg) => {
    if (seg === '*') return '.*';
    if (seg.startsWith(':')) return '[^/]+';
    return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('/')}/?$`);
}

/**
 * Installs the error and not-found handlers: every error becomes a registry error body; anything
 * unexpected is a 500 INTERNAL_ERROR whose details go to the log under the request id. A path that
 * exists with other methods answers 405 METHOD_NOT_ALLOWED with an `Allow` header. Call it before
 * any route is added: it records the routes as they are registered.
 */
export function installErrorHandlers(app: FastifyInstance, fallback?: (request: FastifyRequest, reply: FastifyReply) => boolean): void {
  const routes: { pattern: RegExp; method: string }[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ pattern: routePattern(route.url), method: method.toUpperCase() });
  });
  app.setErrorHandler((err: FastifyError | AppError | Error, request: FastifyRequest, reply: FastifyReply) => {
    if (reply.sent || reply.raw.headersSent) {
      request.log.warn({ err }, 'error after the response was sent');
      return;
    }
    if (err instanceof AppError) {
      if (err.statusCode >= 500) request.log.error({ err }, 'request failed');
      return sendError(reply, err.code, err.message, err.hint);
    }
    const fe = err as FastifyError;
    const known = fe.code ? FASTIFY_CODES[fe.code] : undefined;
    if (known) return sendError(reply, known.code, known.message, known.hint);
    if (err instanceof SyntaxError && fe.statusCode === 400) {
      return sendError(reply, 'INVALID_JSON', `The request body is not valid JSON: ${err.message}`);
    }
    if (fe.validation) return sendError(reply, 'VALIDATION_ERROR', fe.message);
    const status = fe.statusCode ?? 500;
    if (status >= 400 && status < 500 && STATUS_CODES[status]) {
      return sendError(reply, STATUS_CODES[status]!, fe.message);
    }
    request.log.error({ err }, 'unexpected error');
    return sendError(
      reply,
      'INTERNAL_ERROR',
      `Internal server error (request id ${request.id})`,
      'The server log has the details under this request id.',
    );
  });

  app.setNotFoundHandler((request, reply) => {
    if (fallback?.(request, reply)) return reply;
    const path = request.url.split('?')[0]!;
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(path)).map((r) => r.method))];
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      return sendError(
        reply,
        'METHOD_NOT_ALLOWED',
        `${request.method} is not allowed on ${path.slice(0, 200)}; it accepts ${allowed.join(', ')}`,
        'See /openapi.json or docs/api.md for the methods of each endpoint.',
      );
    }
    return sendError(
      reply,
      'NOT_FOUND',
      `No endpoint ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`,
      'See /openapi.json or docs/api.md for the endpoints.',
    );
  });
}
