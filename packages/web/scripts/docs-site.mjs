#!/usr/bin/env node
/**
 * The docs site: renders docs/*.md to HTML pages under dist/docs (marked, at build time) with a
 * nav, an agent-skill page from the CLI's skill text, the API reference (Scalar's standalone bundle
 * over spec/openapi.json) and llms.txt. `node scripts/docs-site.mjs` builds into dist/docs;
 * `--llms` writes public/llms.txt (committed, copied to dist by Vite; a unit test fails when it is stale).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Marked } from 'marked';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '..', '..', '..');

/** Nav order; docs not listed here follow in alphabetical order. */
const ORDER = ['quickstart', 'dashboard', 'cli', 'sdk-node', 'sdk-python', 'cookbook', 'self-hosting', 'configuration', 'workspaces', 'sandboxes', 'networking', 'security', 'api', 'errors', 'benchmarks', 'development', 'guest-agent'];
/** Docs whose page has another address: /docs/api is the API reference, so api.md is the guide. */
const SLUG_OF = { api: 'api-guide' };
const slugOf = (file) => SLUG_OF[file] ?? file;
/** Internal notes that are not user docs. */
const SKIP = new Set(['llms']);

/** The docs pages: slug, title (first heading), first paragraph and markdown. */
export function readDocs(root = ROOT) {
  const dir = join(root, 'docs');
  const slugs = readdirSync(dir)
    .filter((f) => f.endsWith('.md'))
    .map((f) => f.slice(0, -3))
    .filter((s) => !SKIP.has(s) && /^[a-z0-9-]+$/.test(s));
  slugs.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return slugs.map((slug) => {
    const md = readFileSync(join(dir, `${slug}.md`), 'utf8');
    const file = slug;
    slug = slugOf(slug);
    const title = (/^#\s+(.+)$/m.exec(md)?.[1] ?? slug).replace(/`/g, '').trim();
    const para = md
      .split(/\n\s*\n/)
      .map((p) => p.trim())
      .find((p) => p && !p.startsWith('#') && !p.startsWith('|') && !p.startsWith('```') && !p.startsWith('!['));
    const flat = (para ?? '').replace(/\s+/g, ' ').replace(/\[([^\]]+)\]\([^)]+\)/g, '$1');
    // The first sentence, or the first 200 characters of a long one.
    const sentence = /^(.+?[.:])(\s|$)/.exec(flat)?.[1] ?? flat;
    const summary = sentence.length > 200 ? `${sentence.slice(0, 199)}…` : sentence;
    return { slug, file, title, summary, md };
  });
}

function rank(slug) {
  const i = ORDER.indexOf(slug);
  return i < 0 ? ORDER.length : i;
}

/** llms.txt (https://llmstxt.org): what the server is and a link per docs page (raw markdown). */
export function llmsTxt(root = ROOT) {
  const docs = readDocs(root);
  const lines = [
    '# Mags, self-hosted',
    '',
    '> A self-hostable Mags server: run shell scripts in isolated Linux sandboxes (crun, own network',
    '> namespace), keep /root in workspaces, open URLs and SSH into persistent jobs. REST API compatible',
    '> with Mags; `mags` CLI, Node and Python SDKs; a web dashboard at `/`.',
    '',
    '## Docs',
    '',
    ...docs.map((d) => `- [${d.title}](/docs/${d.slug}.md)${d.summary ? `: ${d.summary}` : ''}`),
    '',
    '## API',
    '',
    '- [OpenAPI description](/openapi.json): every endpoint, its fields and error codes',
    '- [API reference](/docs/api): the same, rendered',
    '',
    '## Optional',
    '',
    '- [Agent skill](/docs/agent-skill): how an AI coding agent should use the `mags` CLI',
    '',
  ];
  return lines.join('\n');
}

/** Scalar offline: no web fonts, no telemetry, no hosted features (the server is self-hosted). */
const SCALAR_CONFIG = { withDefaultFonts: false, telemetry: false, showDeveloperTools: 'never', hideClientButton: false, documentDownloadType: 'json', agent: { disabled: true }, mcp: { disabled: true } };

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/** Links between docs (`cli.md`, `docs/cli.md#x`) point at the site's pages. */
function rewriteLinks(html) {
  return html.replace(/href="(?:\.\/|\.\.\/docs\/|docs\/|\/docs\/)?([a-z0-9-]+)\.md(#[^"]*)?"/g, (_m, file, hash) => `href="/docs/${slugOf(file)}${hash ?? ''}"`)
    .replace(/src="(?:\.\/|docs\/)?img\//g, 'src="/docs/img/');
}

function page({ title, nav, active, body, head = '' }) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Mags docs</title><link rel="icon" href="/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/docs/docs.css">${head}</head>
<body><a class="skip" href="#content">Skip to content</a><div class="docs">
<nav class="docs-nav" aria-label="Docs"><a class="brand" href="/docs"><img src="/favicon.svg" alt=""> Mags docs</a>
<ul>${nav.map((n) => `<li><a href="${n.href}"${n.slug === active ? ' aria-current="page"' : ''}>${esc(n.title)}</a></li>`).join('')}</ul>
<p class="nav-foot"><a href="/jobs">Open the dashboard</a> · <a href="/llms.txt">llms.txt</a></p></nav>
<main id="content" class="prose">${body}</main></div></body></html>
`;
}

const CSS = `:root{--bg:#fff;--text:#17171c;--muted:#5b5b6b;--line:#e3e3ea;--accent:#4338ca;--code:#f3f3f8;font-family:ui-sans-serif,system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--text);background:var(--bg);line-height:1.6}
@media (prefers-color-scheme:dark){:root{--bg:#0d0e12;--text:#ececf1;--muted:#a3a3b5;--line:#2a2b34;--accent:#8b8cf8;--code:#1b1c23}}
*{box-sizing:border-box}body{margin:0}a{color:var(--accent)}
.docs{display:grid;grid-template-columns:250px minmax(0,1fr);min-height:100vh}
.docs-nav{border-right:1px solid var(--line);padding:18px 14px;position:sticky;top:0;height:100vh;overflow:auto}
.docs-nav ul{list-style:none;margin:0;padding:0}.docs-nav li a{display:block;padding:5px 10px;border-radius:6px;text-decoration:none;color:var(--text)}
.docs-nav li a[aria-current]{background:var(--accent);color:var(--bg)}.nav-foot{font-size:13px;color:var(--muted);padding:10px}
.brand{display:flex;gap:10px;align-items:center;font-weight:700;font-size:18px;color:var(--text);text-decoration:none;padding:4px 10px 14px}.brand img{width:26px}
.prose{padding:28px 40px;max-width:900px}.prose h1{font-size:30px;line-height:1.2}.prose h2{margin-top:2em;border-bottom:1px solid var(--line);padding-bottom:4px}
.prose code{background:var(--code);padding:1px 5px;border-radius:4px;font-size:.9em}.prose pre{background:var(--code);padding:12px 14px;border-radius:8px;overflow-x:auto}.prose pre code{padding:0;background:none}
.prose table{border-collapse:collapse;display:block;overflow-x:auto}.prose th,.prose td{border:1px solid var(--line);padding:6px 9px;vertical-align:top}.prose img{max-width:100%;border:1px solid var(--line);border-radius:8px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:12px;padding:0;list-style:none}.cards li{border:1px solid var(--line);border-radius:10px;padding:12px}.cards li p{margin:.3em 0 0;color:var(--muted);font-size:14px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:var(--bg);padding:6px}
@media (max-width:760px){.docs{grid-template-columns:1fr}.docs-nav{position:static;height:auto;border-right:0;border-bottom:1px solid var(--line)}.docs-nav ul{display:flex;flex-wrap:wrap;gap:2px}.prose{padding:18px 14px}}`;

/** Builds the docs site into `out` (dist/docs) and llms.txt into its parent. */
export async function buildSite(out = join(here, '..', 'dist', 'docs'), root = ROOT) {
  const docs = readDocs(root);
  mkdirSync(out, { recursive: true });
  const marked = new Marked({ gfm: true });
  const skillModule = join(root, 'packages', 'cli', 'dist', 'src', 'commands', 'setup-claude.js');
  if (!existsSync(skillModule)) throw new Error(`${skillModule} is missing: run the TypeScript build (tsc -b) before the web build`);
  const { SKILL_MD } = await import(pathToFileURL(skillModule).href);
  const nav = [
    ...docs.map((d) => ({ slug: d.slug, title: d.title, href: `/docs/${d.slug}` })),
    { slug: 'agent-skill', title: 'Agent skill', href: '/docs/agent-skill' },
    { slug: 'api', title: 'API reference', href: '/docs/api' },
  ];
  for (const d of docs) {
    writeFileSync(join(out, `${d.slug}.html`), page({ title: d.title, nav, active: d.slug, body: rewriteLinks(await marked.parse(d.md)) }));
    writeFileSync(join(out, `${d.slug}.md`), d.md);
  }
  const skillBody = SKILL_MD.replace(/^---[\s\S]*?---\n/, '');
  const skillIntro = `# Agent skill\n\nThe skill file \`mags setup-claude\` installs (\`~/.claude/skills/mags/SKILL.md\`): it teaches an AI coding agent to run code in sandboxes with the \`mags\` CLI. Install it with \`mags setup-claude\`, or copy it from below.\n\n`;
  writeFileSync(join(out, 'agent-skill.html'), page({ title: 'Agent skill', nav, active: 'agent-skill', body: rewriteLinks(await marked.parse(skillIntro + skillBody)) + `<h2>The file</h2><pre><code>${esc(SKILL_MD)}</code></pre>` }));
  writeFileSync(join(out, 'agent-skill.md'), SKILL_MD);
  const cards = docs.map((d) => `<li><a href="/docs/${d.slug}"><strong>${esc(d.title)}</strong></a><p>${esc(d.summary)}</p></li>`).join('');
  writeFileSync(
    join(out, 'index.html'),
    page({
      title: 'Docs',
      nav,
      active: '',
      body: `<h1>Mags docs</h1><p>Run scripts in isolated Linux sandboxes on your own server. Start with the <a href="/docs/quickstart">quickstart</a>; the <a href="/docs/api">API reference</a> lists every endpoint.</p><ul class="cards">${cards}<li><a href="/docs/agent-skill"><strong>Agent skill</strong></a><p>Teach an AI coding agent to use mags.</p></li><li><a href="/docs/api"><strong>API reference</strong></a><p>Every endpoint, field and error code, from spec/openapi.json.</p></li></ul>`,
    }),
  );
  // The API reference: Scalar's standalone bundle rendering the committed spec.
  copyFileSync(join(root, 'spec', 'openapi.json'), join(out, 'openapi.json'));
  const scalar = join(root, 'node_modules', '@scalar', 'api-reference', 'dist', 'browser', 'standalone.js');
  copyFileSync(scalar, join(out, 'scalar.js'));
  writeFileSync(
    join(out, 'api.html'),
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>API reference · Mags docs</title><link rel="icon" href="/favicon.svg" type="image/svg+xml"></head>
<body><script id="api-reference" data-url="/docs/openapi.json" data-configuration='${JSON.stringify(SCALAR_CONFIG)}'></script><script src="/docs/scalar.js"></script></body></html>
`,
  );
  writeFileSync(join(out, 'docs.css'), CSS);
  const img = join(root, 'docs', 'img');
  if (existsSync(img)) {
    mkdirSync(join(out, 'img'), { recursive: true });
    for (const f of readdirSync(img)) copyFileSync(join(img, f), join(out, 'img', f));
  }
  return docs.length;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (process.argv.includes('--llms')) {
    writeFileSync(join(here, '..', 'public', 'llms.txt'), llmsTxt());
    console.log('wrote packages/web/public/llms.txt');
  } else {
    const n = await buildSite();
    console.log(`docs site: ${n} pages + agent skill + API reference in packages/web/dist/docs`);
  }
}
