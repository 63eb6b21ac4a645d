import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Hashed build outputs (`/assets/index-abc123.js`) never change: browsers may keep them a year. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** index.html, docs pages and llms.txt are revalidated on every load so a new build shows at once. */
const REVALIDATE = 'no-cache';

/**
 * Content-Security-Policy of the app and docs pages: scripts only from this server, no plugins, no
 * framing. Inline styles stay allowed (React, xterm.js and uPlot set style attributes). The API
 * reference page runs Scalar's bundle, which needs more, so it goes without.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const NOT_BUILT_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Mags</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;line-height:1.5">
<h1>Mags server is running</h1>
<p>The dashboard was not built, so there is nothing to show here. The API works under <code>/api</code>
(see <a href="/openapi.json">/openapi.json</a>).</p>
<p>To get the dashboard and the docs site, run <code>npm run build</code> in the installation directory
and restart the server, or point <code>MAGS_WEB_DIR</code> at a built <code>packages/web/dist</code>.</p>
</body></html>`;

/** Whether `dir` holds a built dashboard. */
export function hasWebBuild(dir: string | undefined): dir is string {
  return dir !== undefined && existsSync(join(dir, 'index.html'));
}

/**
 * Serves the built dashboard from `dir` at `/`: files as they are (long cache for hashed assets,
 * no-cache for the rest); without a build, `/` answers how to build it. Client routes are answered
 * by `webFallback` from the not-found handler, so unknown API paths keep their JSON errors.
 */
export async function webRoutes(app: FastifyInstance, dir: string | undefined): Promise<void> {
  if (!hasWebBuild(dir)) {
    app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', REVALIDATE).send(NOT_BUILT_PAGE));
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    wildcard: false,
    cacheControl: false,
    etag: true,
    lastModified: true,
    schemaHide: true,
    setHeaders: (res, path) => {
      res.header('cache-control', path.includes('/assets/') ? IMMUTABLE : REVALIDATE);
      res.header('x-content-type-options', 'nosniff');
      if (path.endsWith('.html') && !path.endsWith(`docs${'/'}api.html`)) {
        res.header('content-security-policy', CSP);
        res.header('referrer-policy', 'same-origin');
      }
    },
  });
}

/**
 * For a browser navigation (GET accepting HTML) outside /api: the docs page of `/docs/<slug>`, else
 * the app's index.html (the client router takes the path). Returns false when it does not apply.
 */
export function webFallback(dir: string | undefined, request: FastifyRequest, reply: FastifyReply): boolean {
  if (!hasWebBuild(dir) || (request.method !== 'GET' && request.method !== 'HEAD')) return false;
  const path = request.url.split('?')[0]!;
  if (path.startsWith('/api/') || path === '/api' || !(request.headers.accept ?? '').includes('text/html')) return false;
  const docs = /^\/docs(?:\/([a-z0-9-]+))?\/?$/.exec(path);
  if (docs) {
    const file = `docs/${docs[1] ?? 'index'}.html`;
    if (isFile(join(dir, file))) {
      void reply.header('cache-control', REVALIDATE).sendFile(file);
      return true;
    }
  }
  void reply.header('cache-control', REVALIDATE).sendFile('index.html');
  return true;
}

function isFile(p: string): boolean {
  return existsSync(p) && statSync(p).isFile();
}
