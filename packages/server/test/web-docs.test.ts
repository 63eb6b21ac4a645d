import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** packages/server/dist/test -> the repository root. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const SITE = join(ROOT, 'packages', 'web', 'scripts', 'docs-site.mjs');

interface DocsSite {
  llmsTxt(root?: string): string;
  readDocs(root?: string): Array<{ slug: string; file: string; title: string; summary: string }>;
}

describe('docs site', () => {
  it('packages/web/public/llms.txt matches the docs (run `npm run gen:llms -w packages/web` when this fails)', async () => {
    const site = (await import(pathToFileURL(SITE).href)) as DocsSite;
    const committed = await readFile(join(ROOT, 'packages', 'web', 'public', 'llms.txt'), 'utf8');
    assert.equal(committed, site.llmsTxt(ROOT), 'llms.txt is stale: run `npm run gen:llms -w packages/web` and commit it');
  });

  it('every docs page has a title, a summary and a link in llms.txt', async () => {
    const site = (await import(pathToFileURL(SITE).href)) as DocsSite;
    const docs = site.readDocs(ROOT);
    const txt = site.llmsTxt(ROOT);
    for (const file of ['quickstart', 'cli', 'sdk-node', 'sdk-python', 'self-hosting', 'cookbook', 'dashboard']) {
      assert.ok(docs.some((d) => d.file === file), `docs/${file}.md is missing from the docs site`);
    }
    for (const d of docs) {
      assert.ok(d.title.length > 0 && d.summary.length > 0, `docs/${d.file}.md needs a heading and a first paragraph`);
      assert.ok(txt.includes(`(/docs/${d.slug}.md)`), `llms.txt lacks docs/${d.file}.md`);
    }
  });
});
