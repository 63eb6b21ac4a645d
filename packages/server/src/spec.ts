/**
 * The OpenAPI document generated from the route code (never hand-written) and a Postman collection
 * generated from it. `node dist/src/spec.js` writes spec/openapi.json and
 * docs/mags-postman-collection.json; `--check` fails when the committed files are stale.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { composeControlPlane } from './compose.js';
import { silentLogger } from './logger.js';
import type { SandboxPool } from './runtime/driver.js';
import { createUrlService } from './services/urls.js';
import { openStores } from './storage/stores.js';
import { LocalLayers } from './workspaces/local-layers.js';

/** The repository root, from packages/server/dist/src. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
export const SPEC_PATH = join(REPO_ROOT, 'spec', 'openapi.json');
export const POSTMAN_PATH = join(REPO_ROOT, 'docs', 'mags-postman-collection.json');

type Json = Record<string, unknown>;

/** A pool that never hands out a sandbox: the spec generator starts no job. */
const NO_SANDBOXES: SandboxPool = {
  start() {},
  acquire: () => Promise.reject(new Error('the spec generator runs no sandboxes')),
  release: async () => {},
  status: () => ({ idle_vms: 0, busy_vms: 0, total_vms: 0, min_pool_size: 0, max_pool_size: 0 }),
  stop: async () => {},
};

/**
 * Builds the control plane exactly as the daemon does (compose.ts), on an in-memory database and
 * without sandboxes, and returns its OpenAPI document.
 */
export async function generateOpenApi(): Promise<Json> {
  const stores = await openStores({ sqlitePath: ':memory:' });
  try {
    const urls = createUrlService(stores, { domain: 'localhost', scheme: 'http', publicPort: () => 8091 }, silentLogger());
    const plane = await composeControlPlane({
      stores,
      pool: NO_SANDBOXES,
      log: silentLogger(),
      settings: { jobTimeoutSeconds: 60, maxOutputBytes: 1024 * 1024, maxConcurrentJobs: 1 },
      urls,
      access: { url: urls },
      // Never mounted: the generator starts nothing.
      workspaces: { layers: new LocalLayers('/nonexistent/mags-spec'), imageVersion: () => 'spec' },
    });
    try {
      return JSON.parse(JSON.stringify(plane.app.swagger())) as Json;
    } finally {
      await plane.close();
    }
  } finally {
    await stores.close();
  }
}

const EXAMPLES: Record<string, unknown> = {
  script: 'echo Hello World',
  type: 'inline',
  name: 'my-job',
  port: 8080,
  no_sleep: false,
  startup_command: 'python3 -m http.server 8080',
  admin: false,
};

/** A small example value of a JSON schema: required properties only, known names get real examples. */
function example(schema: Json | undefined, components: Record<string, Json>, key?: string, depth = 0): unknown {
  if (!schema || depth > 4) return undefined;
  if (typeof schema.$ref === 'string') return example(components[schema.$ref.split('/').pop()!], components, key, depth + 1);
  if (key && key in EXAMPLES) return EXAMPLES[key];
  if (schema.default !== undefined) return schema.default;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  if (schema.const !== undefined) return schema.const;
  switch (schema.type) {
    case 'object': {
      const props = (schema.properties ?? {}) as Record<string, Json>;
      const required = (schema.required ?? []) as string[];
      const out: Json = {};
      for (const k of required) out[k] = example(props[k], components, k, depth + 1);
      return out;
    }
    case 'string':
      return '';
    case 'integer':
    case 'number':
      return 1;
    case 'boolean':
      return false;
    case 'array':
      return [];
    default:
      return undefined;
  }
}

/** Converts the OpenAPI document into a Postman v2.1 collection (one folder per tag). */
export function toPostman(spec: Json): Json {
  const info = spec.info as Json;
  const folders = new Map<string, Json[]>();
  const components = ((spec.components as Json | undefined)?.schemas ?? {}) as Record<string, Json>;
  const paths = (spec.paths ?? {}) as Record<string, Record<string, Json>>;
  for (const [path, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = ((op.tags as string[] | undefined) ?? ['other'])[0]!;
      const segments = path.split('/').filter(Boolean).map((s) => s.replace(/^\{(.+)\}$/, ':$1'));
      const params = (op.parameters ?? []) as Json[];
      const query = params
        .filter((p) => p.in === 'query')
        .map((p) => ({ key: p.name, value: '', description: (p.description as string | undefined) ?? '', disabled: true }));
      const variable = params.filter((p) => p.in === 'path').map((p) => ({ key: p.name, value: '', description: (p.description as string | undefined) ?? '' }));
      const body = ((op.requestBody as Json | undefined)?.content as Record<string, Json> | undefined)?.['application/json'];
      const request: Json = {
        method: method.toUpperCase(),
        header: body ? [{ key: 'Content-Type', value: 'application/json' }] : [],
        url: {
          raw: '{{baseUrl}}/' + segments.join('/'),
          host: ['{{baseUrl}}'],
          path: segments,
          ...(query.length ? { query } : {}),
          ...(variable.length ? { variable } : {}),
        },
        description: (op.summary as string | undefined) ?? '',
      };
      if (Array.isArray(op.security) && op.security.length === 0) request.auth = { type: 'noauth' };
      if (body) {
        request.body = { mode: 'raw', raw: JSON.stringify(example(body.schema as Json, components) ?? {}, null, 2), options: { raw: { language: 'json' } } };
      }
      const list = folders.get(tag) ?? [];
      list.push({ name: `${method.toUpperCase()} ${path}`, request });
      folders.set(tag, list);
    }
  }
  return {
    info: {
      name: String(info.title),
      description: String(info.description ?? ''),
      version: String(info.version),
      schema: 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json',
    },
    auth: { type: 'bearer', bearer: [{ key: 'token', value: '{{token}}', type: 'string' }] },
    variable: [
      { key: 'baseUrl', value: 'http://127.0.0.1:8090' },
      { key: 'token', value: '' },
    ],
    item: [...folders.entries()].map(([name, item]) => ({ name, item })),
  };
}

/** The two generated files' contents. */
export async function generatedFiles(): Promise<{ spec: string; postman: string }> {
  const spec = await generateOpenApi();
  return { spec: JSON.stringify(spec, null, 2) + '\n', postman: JSON.stringify(toPostman(spec), null, 2) + '\n' };
}

async function cli(argv: string[]): Promise<number> {
  const { spec, postman } = await generatedFiles();
  if (argv.includes('--check')) {
    const stale: string[] = [];
    for (const [path, text] of [[SPEC_PATH, spec], [POSTMAN_PATH, postman]] as const) {
      const current = await readFile(path, 'utf8').catch(() => '');
      if (current !== text) stale.push(path);
    }
    if (stale.length) {
      process.stderr.write(`stale generated files: ${stale.join(', ')}; run: npm run gen:spec -w packages/server\n`);
      return 1;
    }
    return 0;
  }
  await writeFile(SPEC_PATH, spec);
  await writeFile(POSTMAN_PATH, postman);
  process.stderr.write(`wrote ${SPEC_PATH} and ${POSTMAN_PATH}\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  cli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`spec generation failed: ${String((err as Error)?.stack ?? err)}\n`);
      process.exit(1);
    },
  );
}
