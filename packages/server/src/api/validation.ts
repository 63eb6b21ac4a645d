import type { FastifySchemaCompiler } from 'fastify';
import { safeParse, type $ZodType } from 'zod/v4/core';
import { AppError } from '../services/errors.js';

interface RawIssue {
  code: string;
  input?: unknown;
  path?: PropertyKey[];
  expected?: string;
  values?: unknown[];
  maximum?: number | bigint;
  minimum?: number | bigint;
  origin?: string;
  inclusive?: boolean;
  keys?: string[];
  format?: string;
  message?: string;
}

/**
 * Messages that say which field is wrong and how, e.g. "script: Required",
 * "vcpus: must be a number, got string". Schema-level custom messages win over these.
 */
export function issueMessage(iss: RawIssue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'Required';
      // JSON such as 1e400 parses to Infinity: a number, but not one any field accepts.
      if (iss.input === Infinity || iss.input === -Infinity) return 'must be a finite number';
      return `must be ${article(iss.expected ?? 'value')}, got ${describe(iss.input)}`;
    case 'too_big':
      if (iss.origin === 'string') return `must be at most ${iss.maximum} characters`;
      if (iss.origin === 'array') return `must have at most ${iss.maximum} items`;
      return `must be ${iss.inclusive === false ? 'less than' : 'at most'} ${iss.maximum}`;
    case 'too_small':
      if (iss.origin === 'string') return Number(iss.minimum) === 1 ? 'must not be empty' : `must be at least ${iss.minimum} characters`;
      if (iss.origin === 'array') return `must have at least ${iss.minimum} items`;
      return `must be ${iss.inclusive === false ? 'greater than' : 'at least'} ${iss.minimum}`;
    case 'invalid_value':
      return `must be ${(iss.values ?? []).map((v) => JSON.stringify(v)).join(' or ')}`;
    case 'not_multiple_of':
      return 'must be a whole number';
    default:
      return undefined;
  }
}

function article(expected: string): string {
  if (expected === 'int') return 'a whole number';
  if (expected === 'record' || expected === 'object') return 'an object';
  if (expected === 'array') return 'an array';
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number' && Number.isNaN(v)) return 'not a number';
  return typeof v;
}

/** "script: Required"; messages that already name their field (start with a quote) stay as they are. */
export function formatIssues(issues: readonly { path: PropertyKey[]; message: string }[], context: string): string {
  const parts = issues.slice(0, 5).map((i) => {
    if (i.message.startsWith("'")) return i.message;
    const where = i.path.length > 0 ? i.path.map(String).join('.') : context === 'body' ? 'request body' : context;
    return `${where}: ${i.message}`;
  });
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : '';
  return parts.join('; ') + more;
}

/**
 * Fastify validator compiler for zod schemas: on failure it returns a VALIDATION_ERROR AppError
 * whose message names each bad field, which the error handler sends as `{"error", "code"}`.
 */
export const validatorCompiler: FastifySchemaCompiler<$ZodType> = ({ schema, httpPart }) => {
  return (data: unknown) => {
    // A missing body arrives as null; optional bodies treat it as absent.
    const input = httpPart === 'body' && data === null ? undefined : data;
    const result = safeParse(schema, input, { reportInput: true, error: (iss) => issueMessage(iss as RawIssue) });
    if (result.success) return { value: result.data };
    if (httpPart === 'body' && input === undefined) {
      return { error: new AppError('VALIDATION_ERROR', 'request body: Required (send a JSON object with Content-Type: application/json)') };
    }
    const context = httpPart === 'querystring' ? 'query' : httpPart === 'params' ? 'path' : (httpPart ?? 'body');
    return { error: new AppError('VALIDATION_ERROR', formatIssues(result.error.issues, context)) };
  };
};
