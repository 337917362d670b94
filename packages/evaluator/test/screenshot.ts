/**
 * Screenshot a report page in headless chromium (how docs/report.png is made):
 *   npx tsx packages/evaluator/test/screenshot.ts data/runs/demo/report/index.html docs/report.png
 * Fails when the page logs a console error. With PLOTS=1, also writes a PNG beside each SVG plot of the
 * report folder (reward.png, entropy.png, ...).
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { launchChromium } from './chromium.ts';

const [html, png] = process.argv.slice(2);
if (!html || !png) {
  process.stderr.write('usage: tsx packages/evaluator/test/screenshot.ts REPORT.html OUT.png\n');
  process.exit(2);
}
const { context, close } = await launchChromium();
try {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`file://${resolve(html)}`, { waitUntil: 'load' });
  mkdirSync(dirname(resolve(png)), { recursive: true });
  await page.screenshot({ path: png, fullPage: process.env.FULL_PAGE === '1' });
  if (process.env.PLOTS === '1') {
    const dir = dirname(resolve(html));
    for (const svg of readdirSync(dir).filter((f) => f.endsWith('.svg'))) {
      await page.goto(`file://${join(dir, svg)}`, { waitUntil: 'load' });
      const out = join(dir, svg.replace(/\.svg$/, '.png'));
      await page.locator('svg').screenshot({ path: out });
      process.stdout.write(`${out}\n`);
    }
  }
  if (errors.length) throw new Error(`console errors: ${errors.join('; ')}`);
  process.stdout.write(`${png}\n`);
} finally {
  await close();
}
