import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../services/errors.js';
import { errorResponses } from './schemas.js';

/** Where `scripts/build-downloads.mjs` puts the client packages: packages/server/dist/downloads. */
export const DEFAULT_DOWNLOADS_DIR = fileURLToPath(new URL('../../downloads/', import.meta.url));

/**
 * GET /downloads/{file} (no auth): the client packages built with the server (the CLI and Node SDK
 * tarballs, the Python wheel), so `npm i -g http://HOST:8090/downloads/mags-cli.tgz` installs the
 * CLI from the server itself. Only the plain file names the directory holds are served.
 */
export const downloadRoutes: FastifyPluginAsyncZod<{ dir: string }> = async (app, { dir }) => {
  const list = async () => (await readdir(dir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? [] : Promise.reject(err)))).filter((f) => /^[\w.+-]+\.(tgz|whl)$/.test(f)).sort();
  app.get(
    '/downloads',
    {
      schema: {
        tags: ['system'],
        summary: 'The client packages this server offers (no auth, ours)',
        security: [],
        response: { 200: z.object({ files: z.array(z.string()) }).meta({ id: 'Downloads' }) },
      },
    },
    async () => ({ files: await list() }),
  );
  app.get(
    '/downloads/:file',
    {
      schema: {
        tags: ['system'],
        summary: 'One client package: mags-cli.tgz, mags-sdk.tgz or the Python wheel (no auth, ours)',
        security: [],
        params: z.object({ file: z.string().max(255) }),
        response: { ...errorResponses },
      },
    },
    async (request, reply) => {
      const { file } = request.params;
      if (!(await list()).includes(file)) {
        throw new AppError('NOT_FOUND', `No download named "${file.slice(0, 80)}"`, 'GET /downloads lists them; build them with node scripts/build-downloads.mjs.');
      }
      const path = join(dir, file);
      const size = (await stat(path)).size;
      reply.header('content-length', size);
      reply.type(file.endsWith('.whl') ? 'application/zip' : 'application/gzip');
      return reply.send(createReadStream(path) as never);
    },
  );
};
