import { describe, expect, it } from 'vitest';
import type { EvalSampleRow } from '@empo/core';
import { passAtK, questionMetrics, summarize } from '../src/index.ts';

describe('evaluation metrics', () => {
  it('computes the unbiased pass@k', () => {
    expect(passAtK(10, 0, 1)).toBe(0);
    expect(passAtK(10, 3, 1)).toBeCloseTo(0.3, 12);
    expect(passAtK(4, 1, 2)).toBeCloseTo(1 - (3 * 2) / (4 * 3), 12); // 1 - C(3,2)/C(4,2) = 0.5
    expect(passAtK(5, 4, 2)).toBe(1);
    expect(() => passAtK(2, 1, 3)).toThrow(/at least 3 samples/);
  });

  it('takes the majority answer over extractable answers', () => {
    const q = questionMetrics({ answers: ['4', '4.0', '5', null, null, null], correct: [true, true, false, false, false, false] });
    expect(q.mean).toBeCloseTo(2 / 6, 12);
    expect(q.majority).toBe(1);
    expect(q.entropy).toBeCloseTo(-(2 / 6) * Math.log(2 / 6) - 4 * (1 / 6) * Math.log(1 / 6), 12);
    expect(questionMetrics({ answers: ['1', '2', '2'], correct: [true, false, false] }).majority).toBe(0);
    expect(questionMetrics({ answers: [null, null], correct: [false, false] }).majority).toBe(0);
  });

  it('summarizes greedy and sampled rows', () => {
    const row = (q: string, i: number, answer: string | null, correct: boolean): EvalSampleRow => ({
      question_id: q, question: q, reference: '1', sample_index: i, completion: '', answer, correct,
    });
    const rows = [
      row('a', -1, '1', true), row('a', 0, '1', true), row('a', 1, '2', false),
      row('b', -1, null, false), row('b', 0, '3', false), row('b', 1, '3', false),
    ];
    const s = summarize(3, 'm', rows);
    expect(s).toMatchObject({ step: 3, questions: 2, samples: 2, greedy_accuracy: 0.5, mean_accuracy: 0.25, maj_accuracy: 0.5, pass_at_k: 0.5, unextractable: 0.5 });
    expect(s.semantic_entropy).toBeCloseTo(Math.log(2) / 2, 12);
  });
});
