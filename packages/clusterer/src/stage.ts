import { EmpoError, RunLayout, clustersSpec, log, readParquetRows, rolloutsSpec, writeJsonAtomic, writeParquet } from '@empo/core';
import type { EmpoConfig, RolloutRow } from '@empo/core';
import { clusterRollouts } from './cluster.ts';

/** The step the clusterer works on: the latest one that has rollouts. */
export function clustererStep(layout: RunLayout): number {
  const steps = layout.stepsWith('rollouts.parquet');
  if (steps.length === 0) {
    throw new EmpoError(`${layout.root}: no rollouts.parquet in any step folder; run the sampler first (npx empo sample)`);
  }
  return steps[steps.length - 1]!;
}

/** The clusterer stage: <run>/step-k/rollouts.parquet -> <run>/step-k/clusters.parquet. */
export async function runClusterer(config: EmpoConfig, step?: number): Promise<{ step: number; path: string; kept: number; groups: number }> {
  const layout = RunLayout.fromConfig(config);
  const target = step ?? clustererStep(layout);
  const rollouts = readParquetRows<RolloutRow>(layout.rolloutsPath(target), rolloutsSpec);
  if (rollouts.length === 0) throw new EmpoError(`${layout.rolloutsPath(target)}: no rollouts in the file`);
  const rows = clusterRollouts(rollouts, config.clusterer, config.seed, target);
  const groups = new Map(rows.map((r) => [r.question_id, r]));
  const kept = [...groups.values()].filter((r) => r.keep).length;
  const meanEntropy = [...groups.values()].reduce((s, r) => s + r.entropy, 0) / groups.size;
  const meanReward = rows.reduce((s, r) => s + r.reward, 0) / rows.length;
  log.info(`clusterer: step ${target}, ${groups.size} questions, kept ${kept}, semantic entropy ${meanEntropy.toFixed(3)}, reward ${meanReward.toFixed(3)}`);
  writeJsonAtomic(layout.configPath, config);
  writeParquet(layout.clustersPath(target), clustersSpec, rows);
  log.info(`clusterer: wrote ${layout.clustersPath(target)}`);
  return { step: target, path: layout.clustersPath(target), kept, groups: groups.size };
}
