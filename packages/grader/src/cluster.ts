/**
 * Greedy semantic clustering of a group's answers, and the group's semantic entropy.
 */
import {
  answersEquivalent,
  equivalentPrepared,
  prepareAnswer,
  resolveEquivalenceOptions,
  type EquivalenceOptions,
  type PreparedAnswer,
} from './equivalence.ts';
import { isUnextractable } from './guards.ts';

/** Whether two (extractable) answers mean the same thing. */
export type Equivalence = (a: string, b: string) => boolean;

export interface Clustering {
  /** Cluster of each answer, numbered 0.. in order of first appearance. */
  clusterIds: number[];
  /** Size of each cluster, indexed by cluster id. */
  clusterSizes: number[];
}

/**
 * The default math equivalence with each answer normalized once (same verdicts as
 * `answersEquivalent(a, b, options)`).
 */
function preparedEquivalence(options?: EquivalenceOptions): Equivalence {
  const opts = resolveEquivalenceOptions(options);
  const prepared = new Map<string, PreparedAnswer>();
  const prepare = (s: string): PreparedAnswer => {
    let p = prepared.get(s);
    if (p === undefined) prepared.set(s, (p = prepareAnswer(s)));
    return p;
  };
  return (a, b) => {
    if (a.length > opts.maxLength || b.length > opts.maxLength) return answersEquivalent(a, b, opts);
    return equivalentPrepared(prepare(a), prepare(b), opts);
  };
}

/**
 * Greedy clustering: each answer is compared with the representative (first member) of every
 * existing cluster in order and joins the first equivalent one, else opens a new cluster.
 * Unextractable answers (null, or empty after normalization) are each their own singleton
 * and never serve as a representative. At most G * (number of clusters) comparisons.
 * Without `equivalent`, math equivalence (`answersEquivalent` with `options`) is used, each
 * answer being normalized once.
 */
export function clusterAnswers(
  answers: readonly (string | null)[],
  equivalent?: Equivalence,
  options?: EquivalenceOptions,
): Clustering {
  const eq = equivalent === undefined || equivalent === answersEquivalent ? preparedEquivalence(options) : equivalent;
  const steps = greedyClustering(answers);
  let step = steps.next();
  while (!step.done) step = steps.next(eq(...step.value));
  return step.value;
}

/**
 * The greedy loop, written once for the synchronous and the asynchronous (judge) equivalence:
 * it yields each comparison [answer, representative] and takes the verdict back, returning
 * the clustering at the end.
 */
export function* greedyClustering(answers: readonly (string | null)[]): Generator<[string, string], Clustering, boolean> {
  const clusterIds: number[] = [];
  const clusterSizes: number[] = [];
  // Representatives of clusters that can be joined (extractable ones only).
  const reps: { id: number; answer: string }[] = [];
  for (const answer of answers) {
    if (answer === null || isUnextractable(answer)) {
      clusterIds.push(clusterSizes.length);
      clusterSizes.push(1);
      continue;
    }
    let joined = -1;
    for (const rep of reps) {
      if (yield [answer, rep.answer]) {
        joined = rep.id;
        break;
      }
    }
    if (joined >= 0) {
      clusterIds.push(joined);
      clusterSizes[joined]!++;
    } else {
      const id = clusterSizes.length;
      reps.push({ id, answer });
      clusterIds.push(id);
      clusterSizes.push(1);
    }
  }
  return { clusterIds, clusterSizes };
}

/** −Σ p ln p over clusters of the given sizes (p = size / total); 0 for an empty group. */
export function entropyFromSizes(clusterSizes: readonly number[]): number {
  let total = 0;
  for (const n of clusterSizes) total += n;
  if (total === 0) return 0;
  let h = 0;
  for (const n of clusterSizes) {
    if (n > 0) {
      const p = n / total;
      h -= p * Math.log(p);
    }
  }
  return h === 0 ? 0 : h; // no -0
}

/** Semantic entropy H = −Σ_c p(c) ln p(c), p(c) = |c| / G, natural log; 0 for an empty group. */
export function semanticEntropy(clusterIds: readonly number[]): number {
  const counts = new Map<number, number>();
  for (const id of clusterIds) counts.set(id, (counts.get(id) ?? 0) + 1);
  return entropyFromSizes([...counts.values()]);
}
