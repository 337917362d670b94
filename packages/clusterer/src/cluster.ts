import type { ClusterRow, ClustererConfig, RolloutRow } from '@empo/core';
import { EmpoError, Rng } from '@empo/core';
import {
  clusterAnswers, clusterAnswersAsync, extractAnswer, getReward, guardAnswers, judgeEquivalence, keepGroup, semanticEntropy,
  answerMatches, type Clustering, type Judge,
} from '@empo/grader';

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
export async function clusterGroup(group: readonly RolloutRow[], config: ClustererConfig, rng: Rng, reference?: string, judge?: Judge): Promise<ClusterRow[]> {
  const sorted = [...group].sort((a, b) => a.sample_index - b.sample_index);
  // Empty answers (and, with copy_guard, answers copied from the question) count as unextractable.
  const answers = guardAnswers(sorted.map((r) => extractAnswer(r.completion, config.answer_mode)), {
    question: sorted[0]?.question,
    responses: sorted.map((r) => r.completion),
    copyGuard: config.copy_guard,
  });
  const { clusterIds, clusterSizes }: Clustering = judge && config.answer_mode === 'text'
    ? await clusterAnswersAsync(answers, judgeEquivalence(judge, { mode: 'text', question: sorted[0]?.question }))
    : clusterAnswers(answers, config.answer_mode === 'math' ? undefined : (a, b) => answerMatches(a, b, config.answer_mode));
  const entropy = semanticEntropy(clusterIds);
  const rewards = getReward(config.reward)({ answers, clusterIds, clusterSizes, rng, reference, mode: config.answer_mode });
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
export async function clusterRollouts(
  rollouts: readonly RolloutRow[],
  config: ClustererConfig,
  seed: number,
  step: number,
  options: { goldAnswers?: ReadonlyMap<string, string>; judge?: Judge } = {},
): Promise<ClusterRow[]> {
  const rng = Rng.derive(seed, 'cluster', step);
  const out: ClusterRow[] = [];
  for (const group of groupByQuestion(rollouts)) {
    const reference = options.goldAnswers?.get(group[0]!.question_id);
    if (config.reward === 'gold' && reference === undefined) {
      throw new EmpoError(`clusterer.gold_answers has no answer for question '${group[0]!.question_id}'`);
    }
    out.push(...(await clusterGroup(group, config, rng, reference, options.judge)));
  }
  return out;
}
