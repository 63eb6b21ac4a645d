import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { OpenedFile } from '../files/guest-fs.js';
import { z } from 'zod';
import { AppError } from '../services/errors.js';
import { sandboxPath, type ReadRange, type SandboxFilesService } from '../services/sandbox-files.js';
import { userOf } from './auth.js';
import { IdParams, errorResponses } from './schemas.js';
import { SseWriter } from './sse.js';

export interface SandboxFileRoutesOptions {
  files: SandboxFilesService;
  heartbeatSeconds?: number;
  stallMs?: number;
}

const FileEntrySchema = z
  .object({
    name: z.string(),
    path: z.string().describe('Absolute path inside the sandbox'),
    type: z.enum(['file', 'dir', 'symlink', 'other']).describe('other: FIFO, socket or device'),
    size: z.number().int().describe('Bytes (a symlink: length of its target text)'),
    mode: z.number().int().describe('Permission bits, e.g. 420 = 0644'),
    mtime: z.string().describe('Modification time, ISO 8601'),
    target: z.string().optional().describe("A symlink's target as stored (not resolved)"),
  })
  .meta({ id: 'FileEntry' });

const FileListSchema = z
  .object({
    path: z.string(),
    entries: z.array(FileEntrySchema).describe('Sorted by path; the entry itself when the path is not a directory'),
    truncated: z.boolean().describe('true when the listing was cut (more than 64 MiB of entries); list deeper paths separately'),
  })
  .meta({ id: 'FileList' });

const PathQuery = z.object({ path: z.string().max(8192).describe('Absolute, or relative to /root; resolved inside the sandbox') });
const flag = z.enum(['0', '1', 'true', 'false']).optional();
const isSet = (v: string | undefined) => v === '1' || v === 'true';
const octal = z.string().regex(/^0?[0-7]{1,4}$/, 'an octal mode such as 644 or 0755');

/**
 * Files of a persistent job's sandbox (ours): read (Range), write (streamed), list, remove, mkdir,
 * move and watch (SSE), under /api/v1 and /api/v2. Every operation runs inside the sandbox
 * (docs/files.md).
 */
export const sandboxFileRoutes: FastifyPluginAsyncZod<SandboxFileRoutesOptions> = async (app, { files, heartbeatSeconds = 15, stallMs = 60_000 }) => {
  // PUT bodies are raw bytes of any type, streamed to the sandbox (never buffered, no body limit
  // here: the service counts against MAGS_FILES_MAX_BYTES).
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  // Registered under /api/v1; app.ts mirrors every job path under /api/v2.
  {
    const base = '/api/v1/mags-jobs/:id/files';
    const tags = ['sandbox-files'];

    app.get(
      base,
      {
        schema: {
          tags,
          summary: "Read a file of a persistent job's sandbox (ours): its bytes, application/octet-stream",
          description: `A single \`Range: bytes=a-b\` (or \`a-\`, \`-n\`) gives 206 with Content-Range. A read larger than MAGS_FILES_MAX_BYTES is refused (413) unless ranged; an open-ended range is cut there. FIFOs, sockets and devices: 409 NOT_A_REGULAR_FILE.`,
          params: IdParams,
          querystring: PathQuery,
          response: { 200: z.string().describe('The file bytes'), 206: z.string().describe('The requested range'), ...errorResponses },
        },
      },
      async (request, reply) => {
        const path = sandboxPath('path', request.query.path);
        const range = parseRange(request.headers.range);
        const abort = new AbortController();
        request.raw.once('close', () => abort.abort());
        return sendFile(reply, range, await files.read(userOf(request), request.params.id, path, range, abort.signal));
      },
    );

    app.put(
      base,
      {
        schema: {
          tags,
          summary: "Write a file in a persistent job's sandbox (ours): the request body, streamed, replaces the file whole",
          description: 'Any content type; the bytes are stored as sent. Written to a temporary file beside the target and renamed over it, so a failed or cut-off upload leaves the old file. `parents=1` creates missing directories; `mode` (octal) sets the permission bits (default: the old file\'s, else 0644). ENOSPC: 507 DISK_FULL.',
          params: IdParams,
          querystring: PathQuery.extend({ mode: octal.optional(), parents: flag.describe('Create missing parent directories (default 1)') }),
          response: { 200: FileEntrySchema, ...errorResponses },
        },
      },
      async (request) => {
        const path = sandboxPath('path', request.query.path);
        const declared = request.headers['content-length'];
        const size = declared === undefined ? undefined : Number(declared);
        const body = (request.body as AsyncIterable<Buffer> | undefined) ?? emptyBody();
        return files.write(userOf(request), request.params.id, path, body, {
          mode: request.query.mode === undefined ? undefined : parseInt(request.query.mode, 8),
          parents: request.query.parents === undefined ? true : isSet(request.query.parents),
          size: size !== undefined && Number.isSafeInteger(size) ? size : undefined,
        });
      },
    );

    app.get(
      `${base}/list`,
      {
        schema: {
          tags,
          summary: "List a directory of a persistent job's sandbox (ours)",
          description: 'Entries below `path` down to `depth` levels (default 1, at most 64), never following symlinks below it; a path that is not a directory lists itself.',
          params: IdParams,
          querystring: PathQuery.extend({ depth: z.coerce.number().int().min(1).max(64).optional() }),
          response: { 200: FileListSchema, ...errorResponses },
        },
      },
      async (request) => {
        const path = sandboxPath('path', request.query.path);
        const listed = await files.list(userOf(request), request.params.id, path, request.query.depth ?? 1);
        return { path, ...listed };
      },
    );

    app.delete(
      base,
      {
        schema: {
          tags,
          summary: "Remove a file or directory of a persistent job's sandbox (ours)",
          description: 'A directory needs `recursive=1` unless empty; symlinks are removed, never followed.',
          params: IdParams,
          querystring: PathQuery.extend({ recursive: flag }),
          response: { 200: z.object({ success: z.literal(true), path: z.string() }), ...errorResponses },
        },
      },
      async (request) => {
        const path = sandboxPath('path', request.query.path);
        await files.remove(userOf(request), request.params.id, path, isSet(request.query.recursive));
        return { success: true as const, path };
      },
    );

    app.post(
      `${base}/mkdir`,
      {
        schema: {
          tags,
          summary: "Create a directory in a persistent job's sandbox (ours)",
          params: IdParams,
          body: z.object({
            path: z.string().max(8192),
            parents: z.boolean().optional().describe('Create missing parents; an existing directory is fine (mkdir -p)'),
            mode: octal.optional(),
          }),
          response: { 200: FileEntrySchema, ...errorResponses },
        },
      },
      async (request) => {
        const { parents, mode } = request.body;
        const path = sandboxPath('path', request.body.path);
        return files.mkdir(userOf(request), request.params.id, path, !!parents, mode === undefined ? undefined : parseInt(mode, 8));
      },
    );

    app.post(
      `${base}/move`,
      {
        schema: {
          tags,
          summary: "Move or rename a file or directory in a persistent job's sandbox (ours)",
          description: 'Without `overwrite`, an existing target answers 409 PATH_EXISTS.',
          params: IdParams,
          body: z.object({ from: z.string().max(8192), to: z.string().max(8192), overwrite: z.boolean().optional() }),
          response: { 200: FileEntrySchema, ...errorResponses },
        },
      },
      async (request) => {
        const from = sandboxPath('from', request.body.from);
        const to = sandboxPath('to', request.body.to);
        return files.move(userOf(request), request.params.id, from, to, !!request.body.overwrite);
      },
    );

    app.get(
      `${base}/watch`,
      {
        schema: {
          tags,
          summary: "Watch a directory of a persistent job's sandbox (ours): Server-Sent Events",
          description:
            'inotify inside the sandbox. One `data:` JSON object per event: `{"type":"ready"}` once the watch is set up, then `create`, `modify`, `delete` (`path`, `dir`), `move` (`from`, `path`, `dir`), `overflow` (events were lost). The job stays awake while a watch is open.',
          params: IdParams,
          querystring: PathQuery.extend({ recursive: flag }),
          response: { 200: z.string().describe('text/event-stream'), ...errorResponses },
        },
      },
      async (request, reply) => {
        const path = sandboxPath('path', request.query.path);
        const queue: string[] = [];
        let wake: (() => void) | undefined;
        const watch = await files.watch(userOf(request), request.params.id, path, isSet(request.query.recursive), (e) => {
          queue.push(`data: ${JSON.stringify(e)}\n\n`);
          wake?.();
        });
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
        let ended = false;
        sse.onClose(() => watch.stop());
        void watch.ended.then(() => {
          ended = true;
          wake?.();
        });
        let open = await sse.send(`data: ${JSON.stringify({ type: 'ready', path })}\n\n`);
        while (open) {
          if (queue.length === 0) {
            if (ended) break;
            await new Promise<void>((ok) => (wake = ok));
            wake = undefined;
            continue;
          }
          open = await sse.send(queue.splice(0).join(''));
        }
        watch.stop();
        sse.end(ended ? `event: end\ndata: ${JSON.stringify({ reason: 'the watch ended (the sandbox went away)' })}\n\n` : undefined);
      },
    );
  }

  const wsTags = ['sandbox-files'];
  const WorkspaceParams = z.object({ id: z.string().describe('Workspace name (workspace_id)') });
  app.get(
    '/api/v1/workspaces/:id/files',
    {
      schema: {
        tags: wsTags,
        summary: 'Read a file of a stored workspace, from its newest synced version (ours; read-only)',
        description: "Only the workspace's own layer (what its jobs created or changed); symlinks are not followed. Range as for jobs.",
        params: WorkspaceParams,
        querystring: PathQuery,
        response: { 200: z.string().describe('The file bytes'), 206: z.string().describe('The requested range'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const path = sandboxPath('path', request.query.path);
      const range = parseRange(request.headers.range);
      return sendFile(reply, range, await files.readWorkspace(userOf(request), request.params.id, path, range));
    },
  );
  app.get(
    '/api/v1/workspaces/:id/files/list',
    {
      schema: {
        tags: wsTags,
        summary: 'List a directory of a stored workspace, from its newest synced version (ours; read-only)',
        params: WorkspaceParams,
        querystring: PathQuery.extend({ depth: z.coerce.number().int().min(1).max(64).optional() }),
        response: { 200: FileListSchema, ...errorResponses },
      },
    },
    async (request) => {
      const path = sandboxPath('path', request.query.path);
      return { path, ...(await files.listWorkspace(userOf(request), request.params.id, path, request.query.depth ?? 1)) };
    },
  );
};

async function* emptyBody(): AsyncIterable<Buffer> {}

/** Answers a read: 200 or 206 with the bytes, or 416 when the range starts past the end. */
function sendFile(reply: FastifyReply, range: ReadRange | undefined, { info, body, bytes }: OpenedFile) {
  if (range && info.length === 0) {
    body.destroy();
    reply.header('content-range', `bytes */${info.size}`);
    throw new AppError('RANGE_NOT_SATISFIABLE', `The range starts at or past the end of the file (${info.size} bytes)`);
  }
  reply.header('content-type', 'application/octet-stream');
  reply.header('content-length', String(info.length));
  reply.header('accept-ranges', 'bytes');
  reply.header('last-modified', new Date(info.mtime).toUTCString());
  reply.header('x-file-size', String(info.size));
  reply.header('x-file-mode', info.mode.toString(8).padStart(4, '0'));
  if (range) {
    const start = range.offset >= 0 ? range.offset : info.size - info.length;
    reply.code(206).header('content-range', `bytes ${start}-${start + info.length - 1}/${info.size}`);
  }
  if (bytes) {
    // A small file came whole: sent as one buffer (the stream, unread, is closed to end the use).
    body.destroy();
    return reply.send(bytes);
  }
  return reply.send(body as never);
}

/** One byte range of a `Range` header; undefined without one. Multiple ranges are refused. */
export function parseRange(header: string | undefined): ReadRange | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) {
    throw new AppError('VALIDATION_ERROR', `Range: expected one range such as "bytes=0-1023", "bytes=1024-" or "bytes=-512", got ${JSON.stringify(header.slice(0, 100))}`);
  }
  const shown = JSON.stringify(header.slice(0, 100));
  const num = (s: string) => {
    const n = Number(s);
    if (!Number.isSafeInteger(n)) throw new AppError('VALIDATION_ERROR', `Range: ${s.slice(0, 30)} is not a usable byte position in ${shown}`);
    return n;
  };
  if (m[1] === '') {
    const n = num(m[2]!);
    if (n === 0) throw new AppError('VALIDATION_ERROR', `Range: a suffix of 0 bytes asks for nothing (${shown})`);
    return { offset: -n };
  }
  const start = num(m[1]!);
  if (m[2] === '') return { offset: start };
  const end = num(m[2]!);
  if (end < start) throw new AppError('VALIDATION_ERROR', `Range: the end comes before the start in ${shown}`);
  return { offset: start, length: end - start + 1 };
}
