import fastifyMultipart from '@fastify/multipart';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../services/errors.js';
import type { UploadsService } from '../services/uploads.js';
import { userOf } from './auth.js';
import { errorResponses } from './schemas.js';

const FileSchema = z
  .object({
    file_id: z.string().describe('The id jobs name in file_ids'),
    name: z.string().describe('Base name; jobs find the file at /root/<name>'),
    size: z.number().int().describe('Size in bytes'),
    sha256: z.string().describe('Hex SHA-256 of the bytes (ours)'),
    created_at: z.string(),
  })
  .meta({ id: 'UploadedFile' });

const FileList = z.object({ files: z.array(FileSchema) }).meta({ id: 'UploadedFileList' });

/** Multipart framing beyond the file's own bytes that a Content-Length may carry before it is refused at once. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/** Uploaded files: upload (multipart, streamed to the blob store), list, delete. */
export const fileRoutes: FastifyPluginAsyncZod<{ uploads: UploadsService }> = async (app, { uploads }) => {
  // One file part; busboy's own cut-off sits one byte past the limit so the service reports it.
  await app.register(fastifyMultipart, { limits: { files: 1, fields: 10, parts: 20, fileSize: uploads.maxBytes + 1 }, preservePath: true });

  app.post(
    '/api/v1/mags-files',
    {
      schema: {
        tags: ['files'],
        summary: 'Upload a file (multipart/form-data with one "file" part); jobs get it in /root via file_ids',
        description: `The part's filename becomes the file's name in /root: one plain name (no "/", ".", "..", control characters; at most 255 bytes). Larger than MAGS_MAX_UPLOAD_BYTES: 413 PAYLOAD_TOO_LARGE.`,
        response: { 201: FileSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      if (!request.isMultipart()) {
        throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Upload the file as multipart/form-data with one part named "file"', 'e.g. curl -F file=@data.csv .../api/v1/mags-files');
      }
      const declared = Number(request.headers['content-length'] ?? NaN);
      if (declared > uploads.maxBytes + MULTIPART_OVERHEAD_BYTES) {
        throw new AppError('PAYLOAD_TOO_LARGE', `The file is larger than this server accepts (${uploads.maxBytes} bytes)`, 'Fetch large data from inside the script, or ask the operator to raise MAGS_MAX_UPLOAD_BYTES.');
      }
      const part = await request.file();
      if (!part) throw new AppError('VALIDATION_ERROR', 'file: Required (send one multipart part named "file")');
      if (part.fieldname !== 'file') {
        part.file.resume();
        throw new AppError('VALIDATION_ERROR', `file: Required (the part is named "${part.fieldname.slice(0, 64)}"; name it "file")`);
      }
      const info = await uploads.upload(user, part.filename, part.file);
      return reply.code(201).send(info);
    },
  );

  app.get(
    '/api/v1/mags-files',
    { schema: { tags: ['files'], summary: "List the caller's uploaded files, newest first (ours)", response: { 200: FileList, ...errorResponses } } },
    async (request) => ({ files: await uploads.list(userOf(request)) }),
  );

  app.delete(
    '/api/v1/mags-files/:id',
    {
      schema: {
        tags: ['files'],
        summary: 'Delete an uploaded file (jobs already running keep their copy)',
        params: z.object({ id: z.string().describe('file_id') }),
        response: { 200: z.object({ success: z.literal(true), file_id: z.string() }), ...errorResponses },
      },
    },
    async (request) => {
      await uploads.delete(userOf(request), request.params.id);
      return { success: true as const, file_id: request.params.id };
    },
  );
};
