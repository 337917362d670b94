import type { ClusterRow } from '@empo/core';

export type RewardScaling = 'group' | 'batch' | 'none';

function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Sample standard deviation (n - 1), as torch.std computes it in TRL. */
function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/** GRPO advantages of one group: (r_i - mean) / (std + eps). */
export function groupAdvantages(rewards: readonly number[], epsilon: number): number[] {
  const m = mean(rewards);
  const std = sampleStd(rewards);
  return rewards.map((r) => (r - m) / (std + epsilon));
}

/**
 * Advantage per (question_id, sample_index) for the groups the entropy filter kept:
 * the reward minus its group's mean, divided by the std of the group (`group`, GRPO), of all
 * kept rewards (`batch`), or not divided (`none`, Dr. GRPO).
 */
export function advantagesByRollout(clusters: readonly ClusterRow[], epsilon: number, scaling: RewardScaling = 'group'): Map<string, number> {
  const groups = new Map<string, ClusterRow[]>();
  for (const row of clusters) {
    if (!row.keep) continue;
    let group = groups.get(row.question_id);
    if (!group) groups.set(row.question_id, (group = []));
    group.push(row);
  }
  const batchStd = sampleStd([...groups.values()].flat().map((r) => r.reward));
  const out = new Map<string, number>();
  for (const group of groups.values()) {
    const rewards = group.map((r) => r.reward);
    const m = mean(rewards);
    const scale = scaling === 'group' ? sampleStd(rewards) + epsilon : scaling === 'batch' ? batchStd + epsilon : 1;
    group.forEach((r) => out.set(rolloutKey(r.question_id, r.sample_index), (r.reward - m) / scale));
  }
  return out;
}

export function rolloutKey(questionId: string, sampleIndex: number): string {
  return `${questionId}\u0000${sampleIndex}`;
}
