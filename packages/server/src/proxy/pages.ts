import type { ServerResponse } from 'node:http';
import { ERROR_CODES, type ErrorCode } from '@mags/shared';

/**
 * The proxy's own answers: a small HTML page for browsers, the API's JSON error shape
 * (`{"error", "code", "hint"?}`) when the client asks for JSON.
 */
export function sendProxyError(res: ServerResponse, accept: string | undefined, code: ErrorCode, message: string, hint?: string, extraHeaders: Record<string, string> = {}): number {
  const status = ERROR_CODES[code].status;
  if (res.headersSent) {
    res.destroy();
    return status;
  }
  const wantsJson = !!accept && /application\/json/i.test(accept) && !/text\/html/i.test(accept);
  const body = wantsJson ? JSON.stringify({ error: message, code, ...(hint ? { hint } : {}) }) : page(status, code, message, hint);
  res.writeHead(status, {
    'content-type': wantsJson ? 'application/json; charset=utf-8' : 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-mags-proxy-error': code,
    ...extraHeaders,
  });
  res.end(body);
  return status;
}

function page(status: number, code: string, message: string, hint?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${status} ${escape(code)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#f2f2f2;padding:0 .2em}small{color:#666}</style>
</head><body>
<h1>${status}</h1>
<p>${escape(message)}</p>
${hint ? `<p>${escape(hint)}</p>` : ''}
<p><small>Mags proxy &middot; <code>${escape(code)}</code></small></p>
</body></html>
`;
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
