import { describe, expect, it } from 'vitest';
import type { EvalSampleRow } from '@empo/core';
import { compareScores, pairedDifference, questionScores } from '../src/compare.ts';

function rows(id: string, greedy: boolean, samples: [string, boolean][]): EvalSampleRow[] {
  const base = { question_id: id, question: id, reference: '1', completion: '' };
  return [
    { ...base, sample_index: -1, answer: greedy ? '1' : '2', correct: greedy },
    ...samples.map(([answer, correct], i) => ({ ...base, sample_index: i, answer, correct })),
  ];
}

describe('pairedDifference', () => {
  it('keeps a real width for 0/1 scores when no question changed (Agresti-Min)', () => {
    const same = Array.from({ length: 200 }, (_, i) => (i < 197 ? 1 : 0));
    const d = pairedDifference(same, same);
    expect(d.delta).toBe(0);
    // Half a question in each discordant cell: half-width 1.96 * sqrt(1) / 202.
    expect(d.ci95[0]).toBeCloseTo(-1.96 / 202, 12);
    expect(d.ci95[1]).toBeCloseTo(1.96 / 202, 12);
  });

  it('matches the Agresti-Min interval computed by hand for 0/1 scores', () => {
    // 200 questions: 10 flipped right, 4 flipped wrong.
    const before = Array.from({ length: 200 }, (_, i) => (i < 10 ? 0 : 1));
    const after = Array.from({ length: 200 }, (_, i) => (i < 10 ? 1 : i < 14 ? 0 : 1));
    const d = pairedDifference(before, after);
    expect(d.delta).toBeCloseTo(6 / 200, 12);
    const b = 10.5;
    const c = 4.5;
    const centre = (b - c) / 202;
    const half = 1.96 * Math.sqrt((b + c - (b - c) ** 2 / 202) / 202 ** 2);
    expect(d.ci95[0]).toBeCloseTo(centre - half, 12);
    expect(d.ci95[1]).toBeCloseTo(centre + half, 12);
  });

  it('uses the normal interval of the mean difference for fractional scores', () => {
    const before = [0.5, 0.25, 1, 0.75];
    const after = [0.75, 0.5, 1, 0.625];
    const d = pairedDifference(before, after);
    const diffs = [0.25, 0.25, 0, -0.125];
    const mean = diffs.reduce((s, x) => s + x, 0) / 4;
    const sd = Math.sqrt(diffs.reduce((s, x) => s + (x - mean) ** 2, 0) / 3);
    expect(d.delta).toBeCloseTo(mean, 12);
    expect(d.ci95[0]).toBeCloseTo(mean - 1.96 * sd / 2, 12);
    expect(d.ci95[1]).toBeCloseTo(mean + 1.96 * sd / 2, 12);
  });

  it('rejects scores of different lengths', () => {
    expect(() => pairedDifference([1], [1, 0])).toThrow(/length/);
  });
});

describe('compareScores', () => {
  it('scores greedy, mean@k and maj@k per question and pairs them by question id', () => {
    const before = questionScores([
      ...rows('q1', false, [['2', false], ['2', false], ['1', true]]),
      ...rows('q2', true, [['1', true], ['1', true], ['3', false]]),
    ]);
    const after = questionScores([
      ...rows('q2', true, [['1', true], ['1', true], ['1', true]]),
      ...rows('q1', true, [['1', true], ['1', true], ['2', false]]),
    ]);
    const c = compareScores(before, after);
    expect(c.greedy_accuracy.delta).toBeCloseTo(0.5, 12);
    expect(c.mean_accuracy!.delta).toBeCloseTo(((2 / 3 - 1 / 3) + (1 - 2 / 3)) / 2, 12);
    expect(c.maj_accuracy!.delta).toBeCloseTo(0.5, 12);
  });

  it('names the evaluations when their questions differ', () => {
    const a = questionScores(rows('q1', true, []));
    const b = questionScores(rows('q9', true, []));
    expect(() => compareScores(a, b, 'eval/step-0000 and eval/step-0020')).toThrow(/step-0000 and eval\/step-0020.*same questions/);
  });
});
