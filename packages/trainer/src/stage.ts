import { existsSync } from 'node:fs';
import {
  EmpoError, RunLayout, clustersSpec, log, metricsSpec, readParquetRows, rolloutsSpec, selectBackend, writeJsonAtomic, writeParquet,
  type ClusterRow, type EmpoConfig, type MetricsRow, type RolloutRow,
} from '@empo/core';
import { Policy } from '@empo/policy';
import { AdamW } from './adamw.ts';
import { loadOptimizerState, saveCheckpoint } from './checkpoint.ts';
import { stepMetrics } from './metrics.ts';
import { buildExamples, policyUpdate } from './update.ts';

/** Check that rollouts and clusters describe the same samples. */
function checkAligned(rollouts: readonly RolloutRow[], clusters: readonly ClusterRow[], rolloutsPath: string, clustersPath: string): void {
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
 * checkpoint k and <run>/step-k/metrics.parquet.
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

  await selectBackend(config.backend);
  const previous = layout.modelDir(step - 1);
  const policy = await Policy.load(previous);
  const optimizer = new AdamW(policy.namedVariables(), {
    learningRate: config.trainer.learning_rate,
    beta1: config.trainer.adam_beta1,
    beta2: config.trainer.adam_beta2,
    epsilon: config.trainer.adam_epsilon,
    weightDecay: config.trainer.weight_decay,
  });
  try {
    const resumed = step > 1 ? await loadOptimizerState(previous, optimizer) : null;
    if (step > 1 && !resumed) throw new EmpoError(`${previous}: checkpoint has no trainer state`);
    const examples = buildExamples(rollouts, clusters, config.trainer);
    log.info(`trainer: step ${step}, ${examples.length} of ${rollouts.length} sequences in kept groups`);
    const stats = policyUpdate(policy, optimizer, examples, config.trainer);
    const metrics = stepMetrics(step, rollouts, clusters, stats, config.trainer.learning_rate);
    if (!Number.isFinite(metrics.loss) || !Number.isFinite(metrics.grad_norm)) {
      throw new EmpoError(`trainer: step ${step} produced a non-finite loss or gradient (loss ${metrics.loss}, grad norm ${metrics.grad_norm}); the checkpoint of step ${step - 1} is kept`);
    }
    // Metrics first: the checkpoint is what marks the step done, so a crash in between reruns the step.
    writeJsonAtomic(layout.configPath, config);
    writeParquet(layout.metricsPath(step), metricsSpec, [metrics]);
    const checkpoint = layout.checkpointDir(step);
    await saveCheckpoint(checkpoint, policy, optimizer, {
      step,
      optimizer_step: optimizer.step,
      seed: config.seed,
      base_model: config.model,
    });
    log.info(
      `trainer: step ${step} loss ${metrics.loss.toFixed(4)} reward ${metrics.reward.toFixed(3)} ` +
        `entropy ${metrics.semantic_entropy.toFixed(3)} grad_norm ${metrics.grad_norm.toFixed(3)} ` +
        `${Math.round(metrics.tokens_per_second)} tokens/s -> ${checkpoint}`,
    );
    return { step, metrics, checkpoint };
  } finally {
    optimizer.dispose();
    policy.dispose();
  }
}
