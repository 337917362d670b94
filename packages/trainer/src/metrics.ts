import type { ClusterRow, MetricsRow, RolloutRow } from '@empo/core';
import type { UpdateStats } from './update.ts';

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0;
}

/**
 * Step metrics with TRL-style names. `distinct_answer_share` is the number of distinct
 * majority answers divided by the number of questions: when every question gets the same
 * answer, it falls towards 1/Q (a collapse alarm that needs no label).
 */
export function stepMetrics(step: number, rollouts: readonly RolloutRow[], clusters: readonly ClusterRow[], stats: UpdateStats, learningRate: number): MetricsRow {
  const rewards = clusters.map((c) => c.reward);
  const rewardMean = mean(rewards);
  const byQuestion = new Map<string, ClusterRow[]>();
  for (const c of clusters) {
    let group = byQuestion.get(c.question_id);
    if (!group) byQuestion.set(c.question_id, (group = []));
    group.push(c);
  }
  const groups = [...byQuestion.values()];
  const majorityAnswers = groups.map((g) => {
    const best = g.reduce((a, b) => (b.cluster_size > a.cluster_size ? b : a));
    return best.answer;
  });
  const distinct = new Set(majorityAnswers.filter((a) => a !== null)).size;
  return {
    step,
    loss: stats.loss,
    reward: rewardMean,
    reward_std: Math.sqrt(mean(rewards.map((r) => (r - rewardMean) ** 2))),
    semantic_entropy: mean(groups.map((g) => g[0]!.entropy)),
    kept_fraction: groups.length ? groups.filter((g) => g[0]!.keep).length / groups.length : 0,
    distinct_answer_share: groups.length ? distinct / groups.length : 0,
    clip_ratio: stats.clipRatio,
    grad_norm: stats.gradNorm,
    learning_rate: learningRate,
    completion_length: mean(rollouts.map((r) => r.completion_ids.length)),
    tokens_per_second: stats.seconds > 0 ? stats.tokens / stats.seconds : 0,
    seconds: stats.seconds,
  };
}
