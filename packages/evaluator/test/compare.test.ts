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
  it('is zero with a zero-width interval when nothing changed', () => {
    expect(pairedDifference([1, 0, 1], [1, 0, 1])).toEqual({ delta: 0, ci95: [0, 0], questions: 3 });
  });

  it('matches the paired normal interval computed by hand', () => {
    // 200 questions: 10 flipped right, 4 flipped wrong -> d has ten 1s, four -1s.
    const before = Array.from({ length: 200 }, (_, i) => (i < 10 ? 0 : i < 14 ? 1 : 1));
    const after = Array.from({ length: 200 }, (_, i) => (i < 10 ? 1 : i < 14 ? 0 : 1));
    const d = pairedDifference(before, after);
    expect(d.delta).toBeCloseTo(6 / 200, 12);
    const mean = 0.03;
    const variance = (10 * (1 - mean) ** 2 + 4 * (-1 - mean) ** 2 + 186 * mean ** 2) / 199;
    const half = 1.96 * Math.sqrt(variance / 200);
    expect(d.ci95[0]).toBeCloseTo(mean - half, 12);
    expect(d.ci95[1]).toBeCloseTo(mean + half, 12);
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
