/**
 * The published package, as a user gets it: `npm pack`, unpacked into the node_modules of fresh ESM
 * and CommonJS projects, type-checked there with `strict` and `skipLibCheck: false`. A declaration
 * that imports a private workspace package, or a CommonJS entry without types, fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SDK_DIR = fileURLToPath(new URL('../../', import.meta.url));
const REPO_ROOT = join(SDK_DIR, '..', '..');
const TSC = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** Packs the SDK and unpacks the tarball as node_modules/@mags/sdk of a new project in `root`. */
function consumerProject(root: string, name: string, pkg: object, tgz: string): string {
  const dir = join(root, name);
  const installed = join(dir, 'node_modules', '@mags', 'sdk');
  mkdirSync(installed, { recursive: true });
  execFileSync('tar', ['-xzf', tgz, '-C', installed, '--strip-components=1']);
  // Only @types/node, as any Node project has it; the SDK itself must need nothing else.
  symlinkSync(join(REPO_ROOT, 'node_modules', '@types'), join(dir, 'node_modules', '@types'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, ...pkg }));
  return dir;
}

function tsconfig(dir: string, extra: object = {}): void {
  const compilerOptions = {
    strict: true,
    skipLibCheck: false,
    noEmit: true,
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    target: 'ES2022',
    lib: ['ES2023'],
    types: ['node'],
    ...extra,
  };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['*.ts', '*.js'] }));
}

function typeCheck(dir: string): void {
  const r = spawnSync(process.execPath, [TSC, '-p', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, `tsc in ${dir} failed:\n${r.stdout}${r.stderr}`);
}

/** Lines any typed consumer may write; each `@ts-expect-error` fails when the types are `any`. */
const USAGE = `
async function use(): Promise<number | null> {
  const mags = new Mags({ apiToken: 't', apiUrl: 'http://127.0.0.1:1' });
  const job: Job = await mags.status('x');
  const status: JobStatus = job.status;
  // @ts-expect-error: not a job status
  const wrong: JobStatus = 'finished';
  const line: LogEntry | undefined = (await mags.logs('x')).logs[0];
  const result: RunResult = await mags.runAndWait('echo hi', { onOutput: (l: LogEntry) => l.message });
  // @ts-expect-error: no such option
  await mags.run('x', { noSuchOption: true });
  try {
    await mags.stop(job.request_id);
  } catch (err) {
    if (err instanceof NotFoundError) {
      const code: MagsErrorCode = err.code;
      // @ts-expect-error: not an error code
      const bad: MagsErrorCode = 'NO_SUCH_CODE';
      void code; void bad;
    }
    if (err instanceof MagsError && err.code === 'JOB_NOT_FOUND') return null;
  }
  void status; void wrong; void line;
  return result.exitCode;
}
void use;
`;

test('the packed SDK type-checks in strict ESM and CommonJS projects (skipLibCheck: false)', () => {
  const root = mkdtempSync(join(tmpdir(), 'mags-sdk-pack-'));
  try {
    const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', root], { cwd: SDK_DIR, encoding: 'utf8' });
    const tgz = join(root, packed.trim().split('\n').pop()!);

    const esm = consumerProject(root, 'esm', { type: 'module' }, tgz);
    tsconfig(esm);
    writeFileSync(
      join(esm, 'index.ts'),
      `import Mags, { Mags as Named, MagsError, NotFoundError } from '@mags/sdk';
import type { Job, JobStatus, LogEntry, MagsErrorCode, RunResult } from '@mags/sdk';
const same: typeof Named = Mags;
void same;
${USAGE}`,
    );
    typeCheck(esm);

    const cjs = consumerProject(root, 'cjs', { type: 'commonjs' }, tgz);
    tsconfig(cjs, { allowJs: true, checkJs: true });
    writeFileSync(
      join(cjs, 'index.ts'),
      `import Mags = require('@mags/sdk');
import type { Job, JobStatus, LogEntry, MagsErrorCode, RunResult } from '@mags/sdk';
const { MagsError, NotFoundError } = Mags;
const job2: Mags.Job | undefined = undefined;
const same: typeof Mags.Mags = Mags.default;
void job2; void same;
${USAGE}`,
    );
    writeFileSync(
      join(cjs, 'plain.js'),
      `'use strict';
const Mags = require('@mags/sdk');
const { NotFoundError } = require('@mags/sdk');
/** @param {import('@mags/sdk').Job} job */
function show(job) { return job.status.toUpperCase(); }
const mags = new Mags({ apiToken: 't' });
mags.status('x').then(show, (/** @type {unknown} */ err) => err instanceof NotFoundError);
// @ts-expect-error: runAndWait needs a script
mags.runAndWait();
module.exports = { show };
`,
    );
    typeCheck(cjs);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the CommonJS types name every type and value the ESM entry exports', () => {
  const esmEntry = join(SDK_DIR, 'dist', 'src', 'index.d.ts');
  const cjsEntry = join(SDK_DIR, 'cjs', 'index.d.ts');
  const program = ts.createProgram([esmEntry, cjsEntry], { strict: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, noEmit: true });
  const checker = program.getTypeChecker();
  const moduleOf = (file: string): ts.Symbol => checker.getSymbolAtLocation(program.getSourceFile(file)!)!;

  const cjsExport = checker.getSymbolAtLocation(program.getSourceFile(cjsEntry)!)!.exports!.get(ts.InternalSymbolName.ExportEquals)!;
  const cjsTarget = cjsExport.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(cjsExport) : cjsExport;
  const cjsTypes = new Set([...(cjsTarget.exports?.keys() ?? [])].map(String));
  const cjsValues = new Set(checker.getPropertiesOfType(checker.getTypeOfSymbol(cjsTarget)).map((s) => s.name));

  const missing: string[] = [];
  for (const sym of checker.getExportsOfModule(moduleOf(esmEntry))) {
    // The default export's type is the CommonJS module itself (`export =` of the class).
    if (sym.name === 'default') continue;
    const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
    if (target.flags & ts.SymbolFlags.Type && !cjsTypes.has(sym.name)) missing.push(`type ${sym.name}`);
    if (target.flags & ts.SymbolFlags.Value && !cjsValues.has(sym.name)) missing.push(`value ${sym.name}`);
  }
  assert.deepEqual(missing, [], 'add these to packages/sdk/cjs/index.d.ts');
  assert.ok(cjsTypes.has('Job') && cjsValues.has('MagsError'), 'the check found the CommonJS exports');
});

test('the SDK source imports no private workspace package', () => {
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts') && /from '@mags\/(?!sdk')/.test(ts.sys.readFile(p) ?? '')) offenders.push(p);
    }
  };
  walk(join(SDK_DIR, 'src'));
  assert.deepEqual(offenders, []);
});
