/**
 * Rewards as plain functions registered by name (TRL style: a new reward is a new function).
 * Each takes one group of G answers (already guarded and clustered) and returns G rewards.
 */
import type { Rng } from '@empo/core';
import type { Equivalence } from './cluster.ts';
import type { AnswerMode } from './extract.ts';
import { answerMatches, referenceAnswer } from './grade.ts';
import { isUnextractable } from './guards.ts';

export interface RewardGroup {
  /** Extracted answers; null (or empty after normalization) = unextractable. */
  answers: readonly (string | null)[];
  /** Cluster of each answer (from `clusterAnswers`). */
  clusterIds: readonly number[];
  /** Size of each cluster, indexed by cluster id. */
  clusterSizes: readonly number[];
  /** Reference answer (bare or a full solution); only the `gold` reward uses it. */
  reference?: string | null;
  /** Seeded generator; only the `random` reward uses it. */
  rng: Rng;
  /** Answer mode for `gold` (default 'math'). */
  mode?: AnswerMode;
  /** Equivalence for `gold` (default: `answerMatches` in `mode`). */
  equivalent?: Equivalence;
}

export type RewardFunction = (group: RewardGroup) => number[];

function checkGroup(name: string, group: RewardGroup): void {
  const g = group.answers.length;
  if (group.clusterIds.length !== g) {
    throw new RangeError(`reward '${name}': ${group.clusterIds.length} cluster ids for ${g} answers`);
  }
  for (const id of group.clusterIds) {
    if (!Number.isInteger(id) || id < 0 || id >= group.clusterSizes.length) {
      throw new RangeError(`reward '${name}': cluster id ${id} outside 0..${group.clusterSizes.length - 1}`);
    }
  }
}

/** EMPO: the share of the answer's cluster, |c| / G; unextractable answers get 0. */
export function empoReward(group: RewardGroup): number[] {
  checkGroup('empo', group);
  const g = group.answers.length;
  return group.answers.map((answer, i) =>
    isUnextractable(answer) ? 0 : group.clusterSizes[group.clusterIds[i]!]! / g,
  );
}

/**
 * Majority vote (TTRL): 1 if the answer is in a largest cluster of extractable answers, else 0;
 * unextractable answers get 0. Ties: every cluster of the largest size counts as a majority
 * (order-independent). So when all extractable answers differ, each gets 1 and the group
 * advantage is 0 (no signal), and a group with no extractable answer gets all 0.
 */
export function majorityReward(group: RewardGroup): number[] {
  checkGroup('majority', group);
  const sizes = new Map<number, number>();
  group.answers.forEach((answer, i) => {
    if (!isUnextractable(answer)) {
      const id = group.clusterIds[i]!;
      sizes.set(id, (sizes.get(id) ?? 0) + 1);
    }
  });
  let largest = 0;
  for (const n of sizes.values()) largest = Math.max(largest, n);
  return group.answers.map((answer, i) =>
    !isUnextractable(answer) && largest > 0 && sizes.get(group.clusterIds[i]!) === largest ? 1 : 0,
  );
}

/** Supervised baseline: 1 if equivalent to the reference answer, else 0. Needs a reference. */
export function goldReward(group: RewardGroup): number[] {
  checkGroup('gold', group);
  if (group.reference === undefined || group.reference === null) {
    throw new Error("reward 'gold' needs a reference answer (group.reference), but none was given");
  }
  const mode = group.mode ?? 'math';
  const ref = referenceAnswer(group.reference, mode);
  return group.answers.map((answer) => {
    if (isUnextractable(answer) || ref === null) return 0;
    const ok = group.equivalent ? group.equivalent(answer!, ref) : answerMatches(answer, ref, mode);
    return ok ? 1 : 0;
  });
}

/** Control: an independent fair coin in {0, 1} per answer, from the group's seeded Rng. */
export function randomReward(group: RewardGroup): number[] {
  checkGroup('random', group);
  return group.answers.map(() => group.rng.int(2));
}

/** Format: 1 if an answer could be extracted (non-empty), else 0. */
export function formatReward(group: RewardGroup): number[] {
  checkGroup('format', group);
  return group.answers.map((answer) => (isUnextractable(answer) ? 0 : 1));
}

/** The registry: name -> reward function. Add a reward by adding a function here. */
export const REWARDS = Object.freeze({
  empo: empoReward,
  majority: majorityReward,
  gold: goldReward,
  random: randomReward,
  format: formatReward,
} satisfies Record<string, RewardFunction>);

export type RewardName = keyof typeof REWARDS;

export const REWARD_NAMES: readonly RewardName[] = Object.freeze(Object.keys(REWARDS) as RewardName[]);

export function isRewardName(name: string): name is RewardName {
  return Object.prototype.hasOwnProperty.call(REWARDS, name);
}

/** The reward function registered under `name`; throws listing the valid names otherwise. */
export function getReward(name: string): RewardFunction {
  if (!isRewardName(name)) {
    throw new Error(`unknown reward '${name}'; valid rewards: ${REWARD_NAMES.join(', ')}`);
  }
  return REWARDS[name];
}
