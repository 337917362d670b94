/**
 * The HTML report in a real headless browser (Debian's chromium driven by playwright-core): the page loads
 * with no console errors, shows the expected numbers in its tables and draws its plots. Skipped, with a
 * message, when /usr/bin/chromium is absent (`.ci/run` installs it: apt-get install -y chromium).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  RunLayout, clustersSpec, metricsSpec, parseConfig, rolloutsSpec, writeJsonAtomic, writeParquet,
  type ClusterRow, type MetricsRow, type RolloutRow,
} from '@empo/core';
import { writeReport, type BenchmarkEvalSummary } from '@empo/evaluator';
import { launchChromium, CHROMIUM } from './chromium.ts';

const present = existsSync(CHROMIUM);
if (!present) process.stderr.write(`skipping the browser report test: ${CHROMIUM} is absent (apt-get install -y chromium)\n`);

const dir = mkdtempSync(join(tmpdir(), 'empo-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function summary(step: number, g: [number, number]): BenchmarkEvalSummary {
  const bench = (name: string, greedy: number) => ({
    step, model: `m${step}`, questions: 10, greedy_accuracy: greedy, samples: 4, mean_accuracy: greedy - 0.05, maj_accuracy: greedy + 0.05,
    pass_at_k: Math.min(1, greedy + 0.2), semantic_entropy: 1.5 - step / 10, unextractable: 0.1, ...(name ? {} : {}),
  });
  const a = bench('gsm8k', g[0]);
  const b = bench('math500', g[1]);
  const mean = (f: (x: typeof a) => number) => (f(a) + f(b)) / 2;
  return {
    step, model: `m${step}`, questions: 20, greedy_accuracy: mean((x) => x.greedy_accuracy), samples: 4, mean_accuracy: mean((x) => x.mean_accuracy),
    maj_accuracy: mean((x) => x.maj_accuracy), pass_at_k: mean((x) => x.pass_at_k), semantic_entropy: mean((x) => x.semantic_entropy), unextractable: 0.1,
    benchmarks: { gsm8k: a, math500: b },
  };
}

function makeRun(): RunLayout {
  const layout = RunLayout.fromConfig(parseConfig({ run: 'browser', runs_dir: dir }));
  for (const step of [1, 2, 3]) {
    const m: MetricsRow = {
      step, loss: 0.1 * step, reward: 0.3 + 0.1 * step, reward_std: 0.2, semantic_entropy: 1.2 - 0.2 * step, kept_fraction: 0.75, distinct_answer_share: 0.9,
      clip_ratio: 0.01, kl: 0, policy_entropy: 0.5, grad_norm: 1.5, learning_rate: 1e-4, completion_length: 20, tokens_per_second: 100, seconds: 2,
    };
    writeParquet(layout.metricsPath(step), metricsSpec, [m]);
  }
  const rollouts: RolloutRow[] = [0, 1, 2].map((i) => ({
    step: 3, question_id: 'q<1>', question: 'What is 2 & 3 <b>?', sample_index: i, prompt: 'p', completion: `so \\boxed{${i === 2 ? 6 : 5}} </script>`,
    prompt_ids: [1], completion_ids: [2, 3], logprobs: [-0.1, -0.2], finished: true,
  }));
  const clusters: ClusterRow[] = [0, 1, 2].map((i) => ({
    step: 3, question_id: 'q<1>', sample_index: i, answer: i === 2 ? '6' : '5', cluster_id: i === 2 ? 1 : 0, cluster_size: i === 2 ? 1 : 2,
    reward: i === 2 ? 1 / 3 : 2 / 3, entropy: 0.6365, keep: true,
  }));
  writeParquet(layout.rolloutsPath(3), rolloutsSpec, rollouts);
  writeParquet(layout.clustersPath(3), clustersSpec, clusters);
  writeJsonAtomic(join(layout.evalDir(0), 'summary.json'), summary(0, [0.2, 0.1]));
  writeJsonAtomic(join(layout.evalDir(3), 'summary.json'), summary(3, [0.4, 0.3]));
  return layout;
}

describe.skipIf(!present)('the HTML report in headless Chromium', () => {
  it('loads with no console errors and shows the expected numbers', async () => {
    const path = writeReport(makeRun());
    const { context, close } = await launchChromium();
    try {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (msg) => { if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`${msg.type()}: ${msg.text()}`); });
      page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
      page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()}`));
      const response = await page.goto(`file://${path}`, { waitUntil: 'load' });
      expect(response?.ok() ?? true).toBe(true);
      expect(await page.title()).toBe('EMPO run browser');
      const cells = async (selector: string) => page.locator(selector).evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));
      expect(await cells('#headline tbody tr')).toEqual([
        ['base (step 0)', '15.0%', '10.0%', '20.0%', '35.0%', '1.500'],
        ['EMPO (step 3)', '35.0%', '30.0%', '40.0%', '55.0%', '1.200'],
      ]);
      expect(await cells('#evals tbody tr')).toEqual([
        ['0', '20', '15.0%', '10.0%', '20.0%', '35.0%', '1.500', '10.0%'],
        ['3', '20', '35.0%', '30.0%', '40.0%', '55.0%', '1.200', '10.0%'],
      ]);
      const bench = await cells('#benchmarks tbody tr');
      expect(bench).toContainEqual(['3', 'gsm8k', '10', '40.0%', '35.0%', '45.0%', '60.0%', '1.200']);
      expect(bench).toContainEqual(['0', 'math500', '10', '10.0%', '5.0%', '15.0%', '30.0%', '1.500']);
      expect((await cells('#metrics tbody tr')).map((r) => r.slice(0, 3))).toEqual([['1', '0.400', '1.000'], ['2', '0.500', '0.800'], ['3', '0.600', '0.600']]);
      // Sample answers with their clusters; the markup in them is shown as text, not run.
      const samples = await cells('#samples tbody tr');
      expect(samples.map((r) => [r[2], r[3]])).toEqual([['5', '0'], ['5', '0'], ['6', '1']]);
      expect(samples[0]![1]).toContain('</script>');
      expect(await page.locator('h3', { hasText: 'What is' }).first().textContent()).toContain('What is 2 & 3 <b>?');
      // Plots: inline SVG with drawn lines, one per chart (5 with the per-benchmark chart).
      expect(await page.locator('.plots svg').count()).toBe(5);
      expect(await page.locator('.plots svg polyline').count()).toBeGreaterThanOrEqual(5);
      const box = await page.locator('.plots svg').first().boundingBox();
      expect(box!.width).toBeGreaterThan(100);
      await page.screenshot({ path: join(dir, 'report.png'), fullPage: true });
      expect(existsSync(join(dir, 'report.png'))).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      await close();
    }
  });
});
