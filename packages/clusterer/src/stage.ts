import { EmpoError, RunLayout, clustersSpec, encodeParquet, labeledQueriesSpec, log, readParquetRows, rolloutsSpec, writeFileNow, writeJsonAtomic } from '@empo/core';
import type { ClusterRow, EmpoConfig, FileWriter, LabeledQueryRow, RolloutRow } from '@empo/core';
import type { Judge } from '@empo/grader';
import { makeJudge } from './judge.ts';
import { clusterRollouts } from './cluster.ts';

/** The step the clusterer works on: the latest one that has rollouts. */
export function clustererStep(layout: RunLayout): number {
  const steps = layout.stepsWith('rollouts.parquet');
  if (steps.length === 0) {
    throw new EmpoError(`${layout.root}: no rollouts.parquet in any step folder; run the sampler first (npx empo sample)`);
  }
  return steps[steps.length - 1]!;
}

/**
 * Reference answers for the supervised `gold` baseline, or undefined for every other reward:
 * the EMPO path never opens a labeled file.
 */
export function readGoldAnswers(config: EmpoConfig): Map<string, string> | undefined {
  if (config.clusterer.reward !== 'gold') return undefined;
  if (!config.clusterer.gold_answers) throw new EmpoError("clusterer.reward 'gold' needs clusterer.gold_answers (a labeled Parquet of the training questions)");
  const rows = readParquetRows<LabeledQueryRow>(config.clusterer.gold_answers, labeledQueriesSpec);
  return new Map(rows.map((r) => [r.question_id, r.answer]));
}

/**
 * Cluster one step's rollouts and write <run>/step-k/clusters.parquet (and the run's config.json) now; or, given
 * `options.write`, hand clusters.parquet to it (`empo train`: written in the background; the loop writes
 * config.json once).
 */
export async function clusterStep(
  rollouts: readonly RolloutRow[],
  config: EmpoConfig,
  step: number,
  options: { goldAnswers?: ReadonlyMap<string, string>; judge?: Judge; write?: FileWriter } = { goldAnswers: readGoldAnswers(config) },
): Promise<ClusterRow[]> {
  const layout = RunLayout.fromConfig(config);
  const rows = await clusterRollouts(rollouts, config.clusterer, config.seed, step, options);
  const groups = [...new Map(rows.map((r) => [r.question_id, r])).values()];
  const kept = groups.filter((r) => r.keep).length;
  const meanEntropy = groups.reduce((s, r) => s + r.entropy, 0) / groups.length;
  const meanReward = rows.reduce((s, r) => s + r.reward, 0) / rows.length;
  log.info(`clusterer: step ${step}, ${groups.length} questions, kept ${kept}, semantic entropy ${meanEntropy.toFixed(3)}, reward ${meanReward.toFixed(3)}`);
  if (!options.write) writeJsonAtomic(layout.configPath, config);
  (options.write ?? writeFileNow)(layout.clustersPath(step), () => encodeParquet(clustersSpec, rows));
  return rows;
}

/** The clusterer stage: <run>/step-k/rollouts.parquet -> <run>/step-k/clusters.parquet (k: latest step with rollouts). */
export async function runClusterer(config: EmpoConfig, step?: number): Promise<{ step: number; path: string; kept: number; groups: number }> {
  const layout = RunLayout.fromConfig(config);
  const target = step ?? clustererStep(layout);
  const rollouts = readParquetRows<RolloutRow>(layout.rolloutsPath(target), rolloutsSpec);
  if (rollouts.length === 0) throw new EmpoError(`${layout.rolloutsPath(target)}: no rollouts in the file`);
  const judge = await makeJudge(config.clusterer);
  let rows: ClusterRow[];
  try {
    rows = await clusterStep(rollouts, config, target, { goldAnswers: readGoldAnswers(config), judge: judge?.judge });
  } finally {
    judge?.policy?.dispose();
  }
  const groups = [...new Map(rows.map((r) => [r.question_id, r])).values()];
  log.info(`clusterer: wrote ${layout.clustersPath(target)}`);
  return { step: target, path: layout.clustersPath(target), kept: groups.filter((g) => g.keep).length, groups: groups.length };
}
