import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

/** packages/server/dist/test/helpers -> the repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', '..');
const AXE = join(REPO_ROOT, 'node_modules', 'axe-core', 'axe.min.js');
export const CHROMIUM = process.env.MAGS_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** Debian's Chromium driven by playwright-core (no downloaded browser). */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (test.sh installs it)`);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[] }>;
}

/** Runs axe-core in the page; returns its serious and critical violations. */
export async function seriousA11yViolations(page: Page): Promise<AxeViolation[]> {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(ctx?: unknown, opts?: unknown): Promise<{ violations: AxeViolation[] }> } }).axe;
    const r = await axe.run((globalThis as unknown as { document: unknown }).document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => ({ target: n.target })) }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/**
 * Screenshots of the page at 1280 and 390 px wide into `dir` (`<name>-1280.png`, `<name>-390.png`);
 * with MAGS_WRITE_SCREENSHOTS=1 they are also copied to docs/img.
 */
export async function screenshots(page: Page, dir: string, name: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width === 1280 ? 860 : 844 });
    await page.waitForTimeout(400);
    const file = join(dir, `${name}-${width}.png`);
    await page.screenshot({ path: file, fullPage: true });
    if (process.env.MAGS_WRITE_SCREENSHOTS === '1') {
      await mkdir(join(REPO_ROOT, 'docs', 'img'), { recursive: true });
      await copyFile(file, join(REPO_ROOT, 'docs', 'img', `${name}-${width}.png`));
    }
  }
  await page.setViewportSize({ width: 1280, height: 860 });
}
