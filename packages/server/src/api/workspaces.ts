import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { WorkspaceService } from '../workspaces/service.js';
import { userOf } from './auth.js';
import { IdParams, errorResponses } from './schemas.js';

const WorkspaceSchema = z
  .object({
    workspace_id: z.string().describe('The name jobs use in workspace_id'),
    name: z.string(),
    size_bytes: z.number().int().describe('Disk space the layer takes on this host (ours)'),
    disk_gb: z.number().int().describe('Size of the layer file system; jobs that fill it get ENOSPC (ours)'),
    image_version: z.string().describe('Base image version the workspace was created on (ours)'),
    created_at: z.string(),
    last_used_at: z.string().nullable(),
    last_sync_at: z.string().nullable(),
    in_use: z.boolean().describe('A pending or running job uses it (ours)'),
    versions: z.number().int().nullable().describe('Stored versions in the blob store; null when the server keeps workspaces on this host only (ours)'),
  })
  .meta({ id: 'Workspace' });

const WorkspaceList = z.object({ workspaces: z.array(WorkspaceSchema) }).meta({ id: 'WorkspaceList' });
const SyncAnswer = z
  .object({
    success: z.literal(true),
    workspace_id: z.string(),
    synced: z.boolean().describe('false when nothing was uploaded (no sync engine: workspaces stay on this host)'),
    version: z.string().optional(),
    message: z.string(),
  })
  .meta({ id: 'SyncAnswer' });

const WorkspaceParams = z.object({ id: z.string().describe('Workspace name (workspace_id)') });
const WorkspaceVersionSchema = z
  .object({
    version: z.string().describe('Version id (`<15-digit ms time>-<6 hex>`), sorts by time'),
    created_at: z.string(),
    files: z.number().int().describe('Paths in the version'),
    bytes: z.number().int().describe('Bytes of its regular files'),
    image_version: z.string().nullable().describe('Base image version the workspace ran on'),
  })
  .meta({ id: 'WorkspaceVersion' });
const WorkspaceHistorySchema = z
  .object({ workspace_id: z.string(), versions: z.array(WorkspaceVersionSchema).describe('Newest first') })
  .meta({ id: 'WorkspaceHistory' });
const RestoreAnswer = z
  .object({
    success: z.literal(true),
    workspace_id: z.string(),
    restored_version: z.string().describe('The version the layer was rebuilt from'),
    version: z.string().describe('The newest version now: the restored state, synced'),
  })
  .meta({ id: 'RestoreAnswer' });
const ResizeAnswer = z
  .object({
    success: z.literal(true),
    workspace_id: z.string(),
    disk_gb: z.number().int(),
    grown: z.boolean().describe('false when the workspace already had this size'),
  })
  .meta({ id: 'ResizeAnswer' });

/** Workspaces: list, delete, history, restore, resize, sync now. */
export const workspaceRoutes: FastifyPluginAsyncZod<{ workspaces: WorkspaceService }> = async (app, { workspaces }) => {
  app.get(
    '/api/v1/workspaces',
    { schema: { tags: ['workspaces'], summary: "List the caller's workspaces", response: { 200: WorkspaceList, ...errorResponses } } },
    async (request) => ({ workspaces: await workspaces.list(userOf(request)) }),
  );
  app.delete(
    '/api/v1/workspaces/:id',
    {
      schema: {
        tags: ['workspaces'],
        summary: 'Delete a workspace: its layer on this host and its stored versions (409 while a job uses it)',
        params: WorkspaceParams,
        response: { 200: z.object({ success: z.literal(true), workspace_id: z.string() }), ...errorResponses },
      },
    },
    async (request) => {
      await workspaces.delete(userOf(request), request.params.id);
      return { success: true as const, workspace_id: request.params.id };
    },
  );
  app.get(
    '/api/v1/workspaces/:id/history',
    {
      schema: {
        tags: ['workspaces'],
        summary: 'Stored versions of a workspace, newest first (ours)',
        params: WorkspaceParams,
        response: { 200: WorkspaceHistorySchema, ...errorResponses },
      },
    },
    async (request) => workspaces.history(userOf(request), request.params.id),
  );
  app.post(
    '/api/v1/workspaces/:id/restore',
    {
      schema: {
        tags: ['workspaces'],
        summary: 'Rebuild a workspace from a stored version; the restored state becomes the newest version (ours; 409 while a job uses it)',
        params: WorkspaceParams,
        body: z.object({ version: z.string().min(1).max(64).describe('A version id from the history') }),
        response: { 200: RestoreAnswer, ...errorResponses },
      },
    },
    async (request) => ({ success: true as const, ...(await workspaces.restore(userOf(request), request.params.id, request.body.version)) }),
  );
  app.patch(
    '/api/v1/workspaces/:id',
    {
      schema: {
        tags: ['workspaces'],
        summary: "Grow a workspace's disk (never shrinks; 409 while a job uses it)",
        params: WorkspaceParams,
        body: z.object({ disk_gb: z.number().int().min(1).describe('New size of the layer file system in GB') }),
        response: { 200: ResizeAnswer, ...errorResponses },
      },
    },
    async (request) => ({ success: true as const, ...(await workspaces.resize(userOf(request), request.params.id, request.body.disk_gb)) }),
  );
  app.post(
    '/api/v1/mags-jobs/:id/sync',
    {
      schema: {
        tags: ['workspaces'],
        summary: "Sync a workspace now, without stopping its job ({id}: workspace name, or a job's request id or name)",
        params: IdParams,
        response: { 200: SyncAnswer, ...errorResponses },
      },
    },
    async (request) => ({ success: true as const, ...(await workspaces.syncNow(userOf(request), request.params.id)) }),
  );
};
