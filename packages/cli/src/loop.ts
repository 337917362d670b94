import { RunLayout, log, progress, selectBackend, writeJsonAtomic, type EmpoConfig, type FileWriter, type MetricsRow, type QueryRow } from '@empo/core';
import { clusterStep, makeJudge, readGoldAnswers } from '@empo/clusterer';
import { checkRunInputs, readTrainQueries, sampleStepParallel } from '@empo/sampler';
import { TrainerSession, checkCollapse } from '@empo/trainer';
import type { PolicyWorkers } from '@empo/policy';
import { loopWorkers } from './workers.ts';

/** The run's training questions, once its folder is known to have been trained from these inputs (checkRunInputs). */
export function checkedTrainQueries(config: EmpoConfig): QueryRow[] {
  const queries = readTrainQueries(config);
  checkRunInputs(config, queries); // a run is continued (or reported as finished) only from the inputs it started with
  return queries;
}

/**
 * Run EMPO until the run has `steps` steps, in one process: the policy stays in memory between
 * stages, every stage still writes its Parquet files, and a checkpoint is written every
 * trainer.save_steps steps and at the end. Resumes from the latest complete checkpoint; since
 * data order and sampling are derived from (seed, step), a resumed run matches an
 * uninterrupted one exactly. `onStep` runs after each step, while that step's metrics file may still be
 * waiting to be written (TrainerSession.flush writes it and waits).
 */
export async function trainLoop(
  config: EmpoConfig,
  steps: number,
  onStep?: (metrics: MetricsRow, session: TrainerSession, workers: PolicyWorkers | null) => Promise<void> | void,
  options: {
    /** Worker threads to use (the caller closes them); default: started here per config `workers`, closed at the end. */
    workers?: PolicyWorkers | null;
    /** The training questions as checkedTrainQueries returned them (a caller that checked first); default: read and checked here. */
    queries?: QueryRow[];
  } = {},
): Promise<MetricsRow[]> {
  const layout = RunLayout.fromConfig(config);
  const queries = options.queries ?? checkedTrainQueries(config);
  const from = layout.latestCheckpointStep();
  if (from >= steps) {
    log.info(`train: run '${config.run}' already has ${from} steps`);
    return [];
  }
  const goldAnswers = readGoldAnswers(config); // undefined unless the supervised baseline asks for it
  for (const path of layout.removeStaleTemporaries()) log.info(`train: removed ${path}, left by a killed run`);
  const backend = await selectBackend(config.backend);
  log.info(`train: run '${config.run}' from step ${from} to ${steps}${from > 0 ? ' (resumed)' : ''}`);
  const judge = await makeJudge(config.clusterer);
  const session = await TrainerSession.open(config, layout, from);
  const all: MetricsRow[] = [];
  let workers: PolicyWorkers | null = options.workers ?? null;
  const bar = progress('EMPO steps', steps - from);
  try {
    // Sampling and the update's micro-batches run on worker threads (config `workers`); same results.
    if (options.workers === undefined) workers = await loopWorkers(config, backend, session.policy);
    // Each step's rollouts.parquet and clusters.parquet go to the session, which encodes them during the update
    // while a worker's core is free and writes them in the background (a checkpoint waits for them); the
    // stage commands write config.json with every file, the loop once.
    writeJsonAtomic(layout.configPath, config);
    const write: FileWriter = (path, encode) => session.writeWithStep(path, encode);
    for (let step = from + 1; step <= steps; step++) {
      const rollouts = await sampleStepParallel(session.policy, workers, queries, config, step, write);
      const clusters = await clusterStep(rollouts, config, step, { goldAnswers, judge: judge?.judge, write });
      // the last steps' metrics from memory: their files may still wait for the next update (TrainerSession.trainParallel)
      const alarm = checkCollapse(layout, config.trainer, step, clusters, session.knownMetrics);
      if (alarm) {
        log.warn(`train: collapse guard stopped run '${config.run}' before step ${step} (no update applied; step ${step - 1} is the result): ${alarm}`);
        if (layout.latestCheckpointStep() < step - 1) await session.save();
        break;
      }
      const metrics = await session.trainParallel(rollouts, clusters, workers);
      if (step % config.trainer.save_steps === 0 || step === steps) await session.save();
      all.push(metrics);
      await onStep?.(metrics, session, workers);
      bar.tick(1, `reward ${metrics.reward.toFixed(2)} entropy ${metrics.semantic_entropy.toFixed(2)}`);
    }
    await session.flush();
  } finally {
    bar.stop();
    if (options.workers === undefined) await workers?.close();
    await session.flush().catch(() => undefined); // on an error: the steps' metrics files still land; the error is the one thrown
    session.dispose();
    judge?.policy?.dispose();
  }
  return all;
}
