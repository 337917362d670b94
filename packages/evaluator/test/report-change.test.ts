/**
 * The report's headline table shows the final evaluation's change from the base with paired 95% intervals (the
 * main job's summary.json `change`), when both evaluations kept their per-question samples.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunLayout, evalSamplesSpec, parseConfig, writeJsonAtomic, writeParquet, type EvalSampleRow } from '@empo/core';
import { compareSteps, readRunData, renderReport } from '@empo/evaluator';

const dir = mkdtempSync(join(tmpdir(), 'empo-report-change-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An evaluation of `n` questions: greedy right on the first `greedyRight`, samples right on the first `sampleRight` of 4. */
function evaluation(layout: RunLayout, step: number, ids: string[], greedyRight: number, sampleRight: (i: number) => number): void {
  const rows: EvalSampleRow[] = ids.flatMap((id, i) => {
    const base = { question_id: id, question: id, reference: '1', completion: '' };
    return [
      { ...base, sample_index: -1, answer: i < greedyRight ? '1' : '2', correct: i < greedyRight },
      ...[0, 1, 2, 3].map((s) => ({ ...base, sample_index: s, answer: s < sampleRight(i) ? '1' : '2', correct: s < sampleRight(i) })),
    ];
  });
  writeParquet(join(layout.evalDir(step), 'samples.parquet'), evalSamplesSpec, rows);
  writeJsonAtomic(join(layout.evalDir(step), 'summary.json'), {
    step, model: `m${step}`, questions: ids.length, greedy_accuracy: greedyRight / ids.length, samples: 4,
    mean_accuracy: null, maj_accuracy: null, pass_at_k: null, semantic_entropy: null, unextractable: 0,
  });
}

const headlineRows = (html: string) => [...html.matchAll(/<tr>(.*?)<\/tr>/g)].map((m) => [...m[1]!.matchAll(/<td>(.*?)<\/td>/g)].map((c) => c[1]));

describe('the report headline', () => {
  const ids = Array.from({ length: 40 }, (_, i) => `q${i}`);

  it('adds the paired change from the base, the figures compareSteps gives', () => {
    const layout = RunLayout.fromConfig(parseConfig({ run: 'change', runs_dir: dir }));
    evaluation(layout, 0, ids, 30, (i) => (i % 4));
    evaluation(layout, 5, ids, 34, (i) => Math.min(4, (i % 4) + 1));
    const data = readRunData(layout);
    const expected = compareSteps(layout, 0, 5);
    expect(data.change).toEqual(expected);
    const row = headlineRows(renderReport(data)).find((r) => r[0]?.startsWith('change'));
    const fmt = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)}`;
    expect(row).toEqual([
      'change in points, 95% interval paired by question',
      `${fmt(expected.greedy_accuracy.delta)} [${fmt(expected.greedy_accuracy.ci95[0])}, ${fmt(expected.greedy_accuracy.ci95[1])}]`,
      `${fmt(expected.mean_accuracy!.delta)} [${fmt(expected.mean_accuracy!.ci95[0])}, ${fmt(expected.mean_accuracy!.ci95[1])}]`,
      `${fmt(expected.maj_accuracy!.delta)} [${fmt(expected.maj_accuracy!.ci95[0])}, ${fmt(expected.maj_accuracy!.ci95[1])}]`,
      '–', '–',
    ]);
    expect(row![1]!.startsWith('+10.0 [')).toBe(true); // 4 more of 40 right: +10 points
  });

  it('leaves the row out when the final evaluation covers other questions (no error)', () => {
    const layout = RunLayout.fromConfig(parseConfig({ run: 'subset', runs_dir: dir }));
    evaluation(layout, 0, ids, 30, () => 2);
    evaluation(layout, 5, ids.slice(0, 16), 12, () => 3);
    const data = readRunData(layout);
    expect(data.change).toBeNull();
    expect(headlineRows(renderReport(data)).some((r) => r[0]?.startsWith('change'))).toBe(false);
  });
});
