import type { ClusterRow, ClustererConfig, RolloutRow } from '@empo/core';
import { EmpoError, Rng } from '@empo/core';
import { clusterAnswers, extractAnswer, getReward, guardAnswers, keepGroup, semanticEntropy } from '@empo/grader';

/** Group rollouts by question, keeping the order in which questions first appear. */
export function groupByQuestion<T extends { question_id: string }>(rows: readonly T[]): T[][] {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    let group = groups.get(row.question_id);
    if (!group) groups.set(row.question_id, (group = []));
    group.push(row);
  }
  return [...groups.values()];
}

/**
 * Extract, cluster and reward the G completions of one question. The reward depends only on
 * the completions themselves, except for the supervised `gold` baseline, which is given the
 * question's reference answer.
 */
export function clusterGroup(group: readonly RolloutRow[], config: ClustererConfig, rng: Rng, reference?: string): ClusterRow[] {
  const sorted = [...group].sort((a, b) => a.sample_index - b.sample_index);
  // Empty answers count as unextractable (a guard against rewarding empty boxes).
  const answers = guardAnswers(sorted.map((r) => extractAnswer(r.completion, 'math')));
  const { clusterIds, clusterSizes } = clusterAnswers(answers);
  const entropy = semanticEntropy(clusterIds);
  const rewards = getReward(config.reward)({ answers, clusterIds, clusterSizes, rng, reference });
  const keep = keepGroup(
    { entropy, clusterSizes, groupSize: sorted.length },
    {
      entropyLow: config.entropy_low,
      entropyHigh: config.entropy_high ?? Math.log(sorted.length),
      minMajorityShare: config.min_majority_share,
    },
  );
  return sorted.map((r, i) => ({
    step: r.step,
    question_id: r.question_id,
    sample_index: r.sample_index,
    answer: answers[i] ?? null,
    cluster_id: clusterIds[i]!,
    cluster_size: clusterSizes[clusterIds[i]!]!,
    reward: rewards[i]!,
    entropy,
    keep,
  }));
}

/** Cluster every group of a step's rollouts. */
export function clusterRollouts(
  rollouts: readonly RolloutRow[],
  config: ClustererConfig,
  seed: number,
  step: number,
  goldAnswers?: ReadonlyMap<string, string>,
): ClusterRow[] {
  const rng = Rng.derive(seed, 'cluster', step);
  return groupByQuestion(rollouts).flatMap((group) => {
    const reference = goldAnswers?.get(group[0]!.question_id);
    if (config.reward === 'gold' && reference === undefined) {
      throw new EmpoError(`clusterer.gold_answers has no answer for question '${group[0]!.question_id}'`);
    }
    return clusterGroup(group, config, rng, reference);
  });
}
