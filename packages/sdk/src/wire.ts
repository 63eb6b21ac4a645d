/**
 * Option names <-> wire fields. SDK options are the wire fields in camelCase (`workspaceId` ->
 * `workspace_id`); the field lists below are what `run` and `updateJob` send, and the build fails
 * when the spec's request schemas gain a field these lists do not name.
 */
import type { SubmitBody, UpdateBody } from './api/types.js';
import { ValidationError } from './errors.js';

/** `snake_case` -> `camelCase` at the type level, so option types follow the wire types. */
export type CamelCase<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<CamelCase<T>>}` : S;
export type Camelize<T> = { [K in keyof T as K extends string ? CamelCase<K> : K]: T[K] };

/** Compiles only when `L` names every key of `T`. */
type Complete<T, L extends readonly (keyof T)[]> = Exclude<keyof T, L[number]> extends never ? L : never;

const submitFields = [
  'script', 'type', 'name', 'workspace_id', 'base_workspace_id', 'persistent', 'no_sleep', 'startup_command',
  'environment', 'file_ids', 'stdin', 'tty', 'disk_gb', 'timeout_seconds', 'timeout', 'vcpus', 'memory_mb', 'rootfs_type',
  'webhook_url',
] as const;
/** Every field of the submit body. */
export const SUBMIT_FIELDS: Complete<SubmitBody, typeof submitFields> = submitFields;
/** Submit fields that only the v2 endpoint takes; any of them switches `run()` to `/api/v2`. */
export const V2_FIELDS = ['vcpus', 'memory_mb', 'rootfs_type'] as const satisfies readonly (keyof SubmitBody)[];

const updateFields = ['no_sleep', 'startup_command'] as const;
/** Every field of the `PATCH /mags-jobs/{id}` body. */
export const UPDATE_FIELDS: Complete<UpdateBody, typeof updateFields> = updateFields;

/** `workspaceId` -> `workspace_id`: the one rule that maps SDK option names to wire fields. */
export function toSnakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

/** `workspace_id` -> `workspaceId`. */
export function toCamelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * Builds a wire body from camelCase options: keeps only the listed fields that are set, renaming each
 * with `toSnakeCase`.
 */
export function toWire<T>(fields: readonly (keyof T & string)[], opts: object): Partial<T> {
  const known = new Set<string>(fields);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(opts)) {
    if (value === undefined) continue;
    const wire = toSnakeCase(key);
    if (known.has(wire)) out[wire] = value;
  }
  return out as Partial<T>;
}

/**
 * Throws a `ValidationError` (code `VALIDATION_ERROR`) for an option `known` does not name, with the
 * closest valid name as a hint (`workspaceID` -> "did you mean workspaceId?").
 */
export function rejectUnknownOptions(where: string, opts: object, known: readonly string[]): void {
  for (const key of Object.keys(opts)) {
    if (known.includes(key)) continue;
    const near = closest(key, known);
    throw new ValidationError(`Unknown option ${JSON.stringify(key)} for ${where}`, {
      code: 'VALIDATION_ERROR',
      hint: near ? `Did you mean ${near}?` : `Valid options: ${known.join(', ')}.`,
    });
  }
}

/** The name in `names` nearest to `key` (case-insensitive edit distance), if it is near enough. */
export function closest(key: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const k = key.toLowerCase().replace(/_/g, '');
  for (const name of names) {
    const d = editDistance(k, name.toLowerCase().replace(/_/g, ''));
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_v, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
