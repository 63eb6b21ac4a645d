/**
 * The wire shapes of the Mags API, in one place. Request and response types of the SDK are derived
 * from these zod schemas (`z.infer`), and responses are checked against them, so a server that
 * answers something else fails loudly with the field's name instead of surfacing `undefined` later.
 * Objects are loose: fields a newer server adds pass through untouched.
 */
import { z } from 'zod';
import type { JobStatus as JobStatusValue, LogLevel, LogStream } from '@mags/shared';

const str = z.string();
const optStr = z.string().nullish();
const optNum = z.number().nullish();
const optBool = z.boolean().nullish();
/** Job status values come from @mags/shared; unknown values from a newer server still parse. */
const jobStatus = z.string() as unknown as z.ZodType<JobStatusValue>;

/** Body of `POST /api/v1/mags-jobs` (v2 adds `vcpus`, `memory_mb`, `rootfs_type`). */
export const SubmitBodySchema = z.object({
  script: str,
  type: z.literal('inline'),
  name: z.string().optional(),
  workspace_id: z.string().optional(),
  base_workspace_id: z.string().optional(),
  persistent: z.boolean().optional(),
  no_sleep: z.boolean().optional(),
  startup_command: z.string().optional(),
  environment: z.record(z.string(), z.string()).optional(),
  file_ids: z.array(z.string()).optional(),
  disk_gb: z.number().optional(),
  /** Wall-clock limit of the script in seconds (ours; Mags servers ignore it). */
  timeout_seconds: z.number().optional(),
  vcpus: z.number().optional(),
  memory_mb: z.number().optional(),
  rootfs_type: z.string().optional(),
});
export type SubmitBody = z.infer<typeof SubmitBodySchema>;
/** Submit fields that only the v2 endpoint takes; any of them switches `run()` to `/api/v2`. */
export const V2_FIELDS = ['vcpus', 'memory_mb', 'rootfs_type'] as const satisfies readonly (keyof SubmitBody)[];

export const SubmitResponseSchema = z.looseObject({
  request_id: str,
  status: str,
  message: optStr,
});
export type SubmitResponse = z.infer<typeof SubmitResponseSchema>;

/** One job as `status`, `list` and `findJob` return it. */
export const JobSchema = z.looseObject({
  request_id: str,
  name: optStr,
  status: jobStatus,
  vm_id: optStr,
  workspace_id: optStr,
  exit_code: optNum,
  subdomain: optStr,
  url: optStr,
  script_duration_ms: optNum,
  started_at: optStr,
  created_at: optStr,
  completed_at: optStr,
  persistent: optBool,
  no_sleep: optBool,
  error_message: optStr,
});
export type Job = z.infer<typeof JobSchema>;

export const JobListSchema = z.looseObject({
  jobs: z.array(JobSchema),
  page: optNum,
  page_size: optNum,
  total: optNum,
});
export type JobList = z.infer<typeof JobListSchema>;

export const LogEntrySchema = z.looseObject({
  timestamp: optStr,
  level: z.string() as unknown as z.ZodType<LogLevel>,
  message: z.string(),
  stream: (z.string() as unknown as z.ZodType<LogStream>).optional(),
  seq: z.number().optional(),
});
export type LogEntry = z.infer<typeof LogEntrySchema>;

export const LogsSchema = z.looseObject({ logs: z.array(LogEntrySchema) });
export type Logs = z.infer<typeof LogsSchema>;

/** The `event: end` payload of the live log stream. */
export const LogEndSchema = z.looseObject({ status: jobStatus, exit_code: optNum, error_message: optStr });
export type LogEnd = z.infer<typeof LogEndSchema>;

/** Answer of `POST /mags-jobs/{id}/access`: a URL for HTTP ports, SSH details for port 22. */
export const AccessSchema = z.looseObject({
  success: z.boolean(),
  url: optStr,
  port: optNum,
  ssh_host: optStr,
  ssh_port: optNum,
  ssh_private_key: optStr,
});
export type Access = z.infer<typeof AccessSchema>;

/** Body of `PATCH /mags-jobs/{id}`. */
export const UpdateBodySchema = z.object({
  no_sleep: z.boolean().optional(),
  startup_command: z.string().optional(),
});
export type UpdateBody = z.infer<typeof UpdateBodySchema>;
export const UpdateResponseSchema = z.looseObject({ success: optBool });
export type UpdateResponse = z.infer<typeof UpdateResponseSchema>;

export const StopSchema = z.looseObject({ success: z.boolean(), request_id: optStr, status: jobStatus.optional() });
export type StopResponse = z.infer<typeof StopSchema>;

export const PoolStatusSchema = z.looseObject({
  idle_vms: z.number(),
  busy_vms: z.number(),
  total_vms: z.number(),
  min_pool_size: z.number(),
  max_pool_size: z.number(),
});
export type PoolStatus = z.infer<typeof PoolStatusSchema>;

export const MeSchema = z.looseObject({ id: str, name: str, admin: z.boolean(), created_at: optStr });
export type Me = z.infer<typeof MeSchema>;

export const TokenCreatedSchema = z.looseObject({ id: str, name: str, token: str, created_at: optStr });
export type TokenCreated = z.infer<typeof TokenCreatedSchema>;
export const TokenInfoSchema = z.looseObject({ id: str, name: str, created_at: optStr, last_used_at: optStr });
export type TokenInfo = z.infer<typeof TokenInfoSchema>;
export const TokenListSchema = z.looseObject({ tokens: z.array(TokenInfoSchema) });
export type TokenList = z.infer<typeof TokenListSchema>;
/** Users (admin only, ours). */
export const UserSchema = z.looseObject({ id: str, name: str, admin: z.boolean(), created_at: optStr });
export type User = z.infer<typeof UserSchema>;
export const UserCreatedSchema = z.looseObject({ id: str, name: str, admin: z.boolean(), token: str });
export type UserCreated = z.infer<typeof UserCreatedSchema>;
export const UserListSchema = z.looseObject({ users: z.array(UserSchema) });
export type UserList = z.infer<typeof UserListSchema>;
export const SuccessSchema = z.looseObject({ success: z.boolean() });
export type Success = z.infer<typeof SuccessSchema>;

export const HealthSchema = z.looseObject({ status: str, version: optStr });
export type Health = z.infer<typeof HealthSchema>;

/** `exec` answer (server feature of a later issue). */
export const ExecSchema = z.looseObject({ exit_code: z.number(), output: z.string(), stderr: z.string().nullish() });
export type ExecResponse = z.infer<typeof ExecSchema>;

/** A workspace of `GET /api/v1/workspaces`. */
export const WorkspaceSchema = z.looseObject({
  workspace_id: optStr,
  id: optStr,
  name: optStr,
  size_bytes: optNum,
  disk_gb: optNum,
  image_version: optStr,
  created_at: optStr,
  last_used_at: optStr,
  last_sync_at: optStr,
  in_use: z.boolean().nullish(),
  versions: optNum,
});
export type Workspace = z.infer<typeof WorkspaceSchema>;
export const WorkspaceListSchema = z.looseObject({ workspaces: z.array(WorkspaceSchema) });
export type WorkspaceList = z.infer<typeof WorkspaceListSchema>;

/** URL aliases (server feature of a later issue). */
export const UrlAliasSchema = z.looseObject({ subdomain: optStr, url: optStr, workspace_id: optStr, domain: optStr });
export type UrlAlias = z.infer<typeof UrlAliasSchema>;

export const UrlAliasListSchema = z.looseObject({ aliases: z.array(UrlAliasSchema).nullish() });
export type UrlAliasList = z.infer<typeof UrlAliasListSchema>;

/** `snake_case` -> `camelCase` at the type level, so option types follow the wire schemas. */
export type CamelCase<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<CamelCase<T>>}` : S;
export type Camelize<T> = { [K in keyof T as K extends string ? CamelCase<K> : K]: T[K] };

/** `workspaceId` -> `workspace_id`: the one rule that maps SDK option names to wire fields. */
export function toSnakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

/** `workspace_id` -> `workspaceId`. */
export function toCamelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * Builds a wire body from camelCase options: keeps only fields the wire schema knows and that are
 * set, renaming each with `toSnakeCase`.
 */
export function toWire<S extends z.ZodObject>(schema: S, opts: object): Partial<z.infer<S>> {
  const known = schema.shape as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(opts)) {
    if (value === undefined) continue;
    const wire = toSnakeCase(key);
    if (wire in known) out[wire] = value;
  }
  return out as Partial<z.infer<S>>;
}
