import { RunLayout, log, progress, selectBackend, type EmpoConfig, type MetricsRow } from '@empo/core';
import { clusterStep, makeJudge, readGoldAnswers } from '@empo/clusterer';
import { readTrainQueries, sampleStep } from '@empo/sampler';
import { TrainerSession } from '@empo/trainer';

/**
 * Run EMPO until the run has `steps` steps, in one process: the policy stays in memory between
 * stages, every stage still writes its Parquet files, and a checkpoint is written every
 * trainer.save_steps steps and at the end. Resumes from the latest complete checkpoint; since
 * data order and sampling are derived from (seed, step), a resumed run matches an
 * uninterrupted one exactly.
 */
export async function trainLoop(
  config: EmpoConfig,
  steps: number,
  onStep?: (metrics: MetricsRow, session: TrainerSession) => Promise<void> | void,
): Promise<MetricsRow[]> {
  const layout = RunLayout.fromConfig(config);
  const from = layout.latestCheckpointStep();
  if (from >= steps) {
    log.info(`train: run '${config.run}' already has ${from} steps`);
    return [];
  }
  const queries = readTrainQueries(config);
  const goldAnswers = readGoldAnswers(config); // undefined unless the supervised baseline asks for it
  for (const path of layout.removeStaleTemporaries()) log.info(`train: removed ${path}, left by a killed run`);
  await selectBackend(config.backend);
  log.info(`train: run '${config.run}' from step ${from} to ${steps}${from > 0 ? ' (resumed)' : ''}`);
  const judge = await makeJudge(config.clusterer);
  const session = await TrainerSession.open(config, layout, from);
  const all: MetricsRow[] = [];
  const bar = progress('EMPO steps', steps - from);
  try {
    for (let step = from + 1; step <= steps; step++) {
      const rollouts = sampleStep(session.policy, queries, config, step);
      const clusters = await clusterStep(rollouts, config, step, { goldAnswers, judge: judge?.judge });
      const metrics = session.train(rollouts, clusters);
      if (step % config.trainer.save_steps === 0 || step === steps) await session.save();
      all.push(metrics);
      await onStep?.(metrics, session);
      bar.tick(1, `reward ${metrics.reward.toFixed(2)} entropy ${metrics.semantic_entropy.toFixed(2)}`);
    }
  } finally {
    bar.stop();
    session.dispose();
    judge?.policy?.dispose();
  }
  return all;
}
