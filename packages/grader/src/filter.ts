/**
 * Entropy thresholding: which groups (questions) are kept for the policy update.
 */

export interface GroupStats {
  /** Semantic entropy of the group (natural log). */
  entropy: number;
  /** Size of each cluster. */
  clusterSizes: readonly number[];
  /** G, the number of answers in the group. */
  groupSize: number;
}

export interface FilterOptions {
  /** Keep only when H > entropyLow (exclusive; default 0: all-agree groups, H = 0, are dropped). */
  entropyLow?: number;
  /** Keep only when H < entropyHigh (exclusive; default ln G: all-different groups are dropped). */
  entropyHigh?: number;
  /** Keep only when the largest cluster holds at least this share of G (inclusive; default 0). */
  minMajorityShare?: number;
}

/** Slack for floating-point entropies (ln G computed as a sum is not exactly Math.log(G)). */
export const ENTROPY_EPSILON = 1e-9;

export type FilterDecision = 'keep' | 'entropy-too-low' | 'entropy-too-high' | 'majority-too-small' | 'empty';

/** Why a group is kept or dropped (for monitoring). */
export function classifyGroup(stats: GroupStats, options: FilterOptions = {}): FilterDecision {
  const { entropy, clusterSizes, groupSize } = stats;
  if (!(groupSize > 0)) return 'empty';
  const low = options.entropyLow ?? 0;
  const high = options.entropyHigh ?? Math.log(groupSize);
  const minShare = options.minMajorityShare ?? 0;
  if (!(entropy > low + ENTROPY_EPSILON)) return 'entropy-too-low';
  if (!(entropy < high - ENTROPY_EPSILON)) return 'entropy-too-high';
  let largest = 0;
  for (const n of clusterSizes) largest = Math.max(largest, n);
  if (largest / groupSize < minShare - ENTROPY_EPSILON) return 'majority-too-small';
  return 'keep';
}

/**
 * Keep a group when entropyLow < H < entropyHigh (both exclusive, with a 1e-9 slack) and the
 * largest cluster's share is >= minMajorityShare. With the defaults, groups whose answers all
 * agree (H = 0) and groups whose answers all differ (H = ln G) are dropped.
 */
export function keepGroup(stats: GroupStats, options: FilterOptions = {}): boolean {
  return classifyGroup(stats, options) === 'keep';
}
