import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunLayout, readParquetRows } from '@empo/core';
import { benchmarkSamplesSpec, renderReport, readRunData, runEvaluator, type BenchmarkEvalSummary, type BenchmarkSampleRow } from '@empo/evaluator';
import { makeTinyWorkspace } from '../../../test/helpers.ts';

describe('the evaluator stage on several benchmarks', () => {
  it('writes per-sample rows with their benchmark, per-benchmark and averaged metrics, and reports them', async () => {
    const { dir, config: base } = await makeTinyWorkspace();
    try {
      writeFileSync(join(dir, 'math.jsonl'), ['1+2', '3+4', '5+1'].map((q, i) => JSON.stringify({ q: `a=${q} ?`, sol: `\\boxed{${[3, 7, 6][i]}}` })).join('\n'));
      writeFileSync(join(dir, 'mc.jsonl'), [JSON.stringify({ question: 'Pick', choices: ['1', '2'], answer: 0 })].join('\n'));
      const config = {
        ...base,
        evaluator: {
          ...base.evaluator, num_samples: 2,
          benchmarks: [
            { name: 'mine', path: join(dir, 'math.jsonl'), question_field: 'q', answer_field: 'sol' },
            { name: 'choice', path: join(dir, 'mc.jsonl'), choices_field: 'choices' },
          ],
        },
      };
      const summary = await runEvaluator(config, 0) as BenchmarkEvalSummary;
      expect(Object.keys(summary.benchmarks)).toEqual(['mine', 'choice']);
      expect(summary.benchmarks.mine!.questions).toBe(3);
      expect(summary.benchmarks.choice!.questions).toBe(1);
      expect(summary.questions).toBe(4);
      expect(summary.greedy_accuracy).toBeCloseTo((summary.benchmarks.mine!.greedy_accuracy + summary.benchmarks.choice!.greedy_accuracy) / 2);
      const layout = RunLayout.fromConfig(config);
      const rows = readParquetRows<BenchmarkSampleRow>(join(layout.evalDir(0), 'samples.parquet'), benchmarkSamplesSpec);
      expect(rows).toHaveLength(4 * 3);
      expect(rows.filter((r) => r.benchmark === 'mine').map((r) => r.reference)).toContain('7');
      expect(rows.find((r) => r.benchmark === 'choice')!.reference).toBe('A');
      expect(JSON.parse(readFileSync(join(layout.evalDir(0), 'summary.json'), 'utf8')).benchmarks.mine.questions).toBe(3);
      const html = renderReport(readRunData(layout));
      expect(html).toContain('<table id="benchmarks">');
      expect(html).toContain('<td>choice</td>');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
