import { clusterAnswers, semanticEntropy } from '@empo/grader';

/** Unbiased pass@k from n samples of which c are correct (Chen et al., 2021): 1 - C(n-c, k) / C(n, k). */
export function passAtK(n: number, c: number, k: number): number {
  if (k > n) throw new RangeError(`pass@${k} needs at least ${k} samples, got ${n}`);
  if (n - c < k) return 1;
  let miss = 1;
  for (let i = n - c + 1; i <= n; i++) miss *= 1 - k / i;
  return 1 - miss;
}

export interface QuestionSamples {
  answers: (string | null)[];
  correct: boolean[];
}

/** Per-question figures over k samples: mean accuracy, majority-vote correctness, semantic entropy. */
export function questionMetrics(q: QuestionSamples): { mean: number; majority: number; entropy: number; correct: number } {
  const n = q.answers.length;
  const correct = q.correct.filter(Boolean).length;
  const { clusterIds, clusterSizes } = clusterAnswers(q.answers);
  // Majority vote over extractable answers; ties go to the cluster seen first.
  let best = -1;
  clusterSizes.forEach((size, id) => {
    const member = clusterIds.indexOf(id);
    if (q.answers[member] === null) return;
    if (best < 0 || size > clusterSizes[best]!) best = id;
  });
  const majority = best < 0 ? 0 : q.correct[clusterIds.indexOf(best)] ? 1 : 0;
  return { mean: n ? correct / n : 0, majority, entropy: n ? semanticEntropy(clusterIds) : 0, correct };
}
