import type { ClusterRow } from '@empo/core';

/**
 * GRPO advantages: within each question's group, A_i = (r_i - mean) / (std + eps), with the
 * sample standard deviation (n - 1), as TRL computes it. Groups dropped by the entropy filter
 * get no advantage (they are left out of the update).
 */
export function groupAdvantages(rewards: readonly number[], epsilon: number): number[] {
  const n = rewards.length;
  const mean = rewards.reduce((s, r) => s + r, 0) / n;
  const variance = n > 1 ? rewards.reduce((s, r) => s + (r - mean) ** 2, 0) / (n - 1) : 0;
  const std = Math.sqrt(variance);
  return rewards.map((r) => (r - mean) / (std + epsilon));
}

/** Advantage per (question_id, sample_index) for the kept groups. */
export function advantagesByRollout(clusters: readonly ClusterRow[], epsilon: number): Map<string, number> {
  const groups = new Map<string, ClusterRow[]>();
  for (const row of clusters) {
    if (!row.keep) continue;
    let group = groups.get(row.question_id);
    if (!group) groups.set(row.question_id, (group = []));
    group.push(row);
  }
  const out = new Map<string, number>();
  for (const group of groups.values()) {
    const advantages = groupAdvantages(group.map((r) => r.reward), epsilon);
    group.forEach((r, i) => out.set(rolloutKey(r.question_id, r.sample_index), advantages[i]!));
  }
  return out;
}

export function rolloutKey(questionId: string, sampleIndex: number): string {
  return `${questionId}\u0000${sampleIndex}`;
}
