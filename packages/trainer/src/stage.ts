import { existsSync } from 'node:fs';
import {
  EmpoError, RunLayout, clustersSpec, readParquetRows, rolloutsSpec, selectBackend, writeJsonAtomic,
  type ClusterRow, type EmpoConfig, type MetricsRow, type RolloutRow,
} from '@empo/core';
import { checkCollapse } from './collapse.ts';
import { startWorkers, type PolicyWorkers } from '@empo/policy';
import { TrainerSession } from './session.ts';
import { trainerTaskModule } from './worker-tasks.ts';

/** Check that rollouts and clusters describe the same samples. */
export function checkAligned(rollouts: readonly RolloutRow[], clusters: readonly ClusterRow[], rolloutsPath: string, clustersPath: string): void {
  const keys = new Set(rollouts.map((r) => `${r.question_id}#${r.sample_index}`));
  const missing = clusters.find((c) => !keys.has(`${c.question_id}#${c.sample_index}`));
  if (clusters.length !== rollouts.length || missing) {
    throw new EmpoError(
      `${clustersPath} does not match ${rolloutsPath} (${clusters.length} vs ${rollouts.length} rows); rerun the clusterer (npx empo cluster)`,
    );
  }
}

/**
 * The trainer stage: rollouts + clusters of step k and the checkpoint of step k-1 ->
 * <run>/step-k/metrics.parquet, then checkpoint k (the checkpoint marks the step done, so a
 * crash in between reruns the step).
 */
export async function runTrainer(config: EmpoConfig): Promise<{ step: number; metrics: MetricsRow; checkpoint: string }> {
  const layout = RunLayout.fromConfig(config);
  const step = layout.nextStep();
  const rolloutsPath = layout.rolloutsPath(step);
  const clustersPath = layout.clustersPath(step);
  if (!existsSync(rolloutsPath)) throw new EmpoError(`${rolloutsPath}: file not found; run the sampler for step ${step} first (npx empo sample)`);
  if (!existsSync(clustersPath)) throw new EmpoError(`${clustersPath}: file not found; run the clusterer for step ${step} first (npx empo cluster)`);
  const rollouts = readParquetRows<RolloutRow>(rolloutsPath, rolloutsSpec);
  const clusters = readParquetRows<ClusterRow>(clustersPath, clustersSpec);
  checkAligned(rollouts, clusters, rolloutsPath, clustersPath);
  const alarm = checkCollapse(layout, config.trainer, step, clusters);
  if (alarm) {
    throw new EmpoError(`trainer: collapse guard stopped the run before step ${step}: ${alarm}. ` +
      `The checkpoint of step ${step - 1} is the result; no update was applied.`);
  }
  const backend = await selectBackend(config.backend);
  const session = await TrainerSession.open(config, layout, step - 1);
  // Worker threads only when the config asks for them: for one stage on a small model they cost more than they save.
  let workers: PolicyWorkers | null = null;
  try {
    workers = await startWorkers(config.workers ?? 1, { backend, model: session.policy, taskModules: [trainerTaskModule] });
    const metrics = await session.trainParallel(rollouts, clusters, workers);
    writeJsonAtomic(layout.configPath, config);
    const checkpoint = await session.save();
    return { step, metrics, checkpoint };
  } finally {
    await workers?.close();
    session.dispose();
  }
}
