import type { ClusterRow, MetricsRow, RolloutRow } from '@empo/core';
import { batchSignals } from './collapse.ts';
import type { UpdateStats } from './update.ts';

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0;
}

/**
 * Step metrics with TRL-style names. `distinct_answer_share` is the number of distinct
 * majority answers divided by the number of questions: when every question gets the same
 * answer it falls towards 1/Q (a collapse alarm that needs no label). `policy_entropy` is
 * the mean -log p of the sampled tokens, an unbiased estimate of the token entropy at T = 1.
 */
export function stepMetrics(step: number, rollouts: readonly RolloutRow[], clusters: readonly ClusterRow[], stats: UpdateStats, learningRate: number): MetricsRow {
  const rewards = clusters.map((c) => c.reward);
  const rewardMean = mean(rewards);
  const signals = batchSignals(clusters);
  const kept = new Map(clusters.map((c) => [c.question_id, c.keep]));
  const sampledLogprobs = rollouts.flatMap((r) => r.logprobs);
  return {
    step,
    loss: stats.loss,
    reward: rewardMean,
    reward_std: Math.sqrt(mean(rewards.map((r) => (r - rewardMean) ** 2))),
    semantic_entropy: signals.semantic_entropy,
    kept_fraction: kept.size ? [...kept.values()].filter(Boolean).length / kept.size : 0,
    distinct_answer_share: signals.distinct_answer_share,
    clip_ratio: stats.clipRatio,
    kl: stats.kl,
    policy_entropy: -mean(sampledLogprobs),
    grad_norm: stats.gradNorm,
    learning_rate: learningRate,
    completion_length: mean(rollouts.map((r) => r.completion_ids.length)),
    tokens_per_second: stats.seconds > 0 ? (stats.tokens * stats.optimizerSteps) / stats.seconds : 0,
    seconds: stats.seconds,
  };
}

/** A warning when the share of distinct answers across questions fell sharply since the previous step. */
export function collapseWarning(previous: MetricsRow | null, current: MetricsRow): string | null {
  if (!previous || previous.distinct_answer_share <= 0) return null;
  if (current.distinct_answer_share < 0.5 * previous.distinct_answer_share) {
    return `distinct answers across questions fell from ${(previous.distinct_answer_share * 100).toFixed(0)}% to ` +
      `${(current.distinct_answer_share * 100).toFixed(0)}% of questions at step ${current.step}: possible collapse to one answer`;
  }
  return null;
}
