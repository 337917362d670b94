import {
  EmpoError, RunLayout, log, queriesSpec, readParquetRows, rolloutsSpec, selectBackend, writeJsonAtomic, writeParquet,
  type EmpoConfig, type QueryRow,
} from '@empo/core';
import { Policy } from '@empo/policy';
import { questionsForStep } from './select.ts';
import { sampleRollouts } from './sample.ts';

/** The sampler stage: queries + latest checkpoint -> <run>/step-k/rollouts.parquet for the next step k. */
export async function runSampler(config: EmpoConfig): Promise<{ step: number; path: string; rows: number }> {
  const layout = RunLayout.fromConfig(config);
  const step = layout.nextStep();
  const queries = readParquetRows<QueryRow>(config.train_queries, queriesSpec);
  if (queries.length === 0) throw new EmpoError(`${config.train_queries}: the question set is empty`);
  await selectBackend(config.backend);
  const modelDir = layout.modelDir(step - 1);
  log.info(`sampler: step ${step}, model ${modelDir}, ${config.sampler.questions_per_step} questions x ${config.sampler.num_generations}`);
  const policy = await Policy.load(modelDir);
  try {
    const questions = questionsForStep(queries, step, config.sampler.questions_per_step, config.seed);
    const start = Date.now();
    const rows = sampleRollouts(policy, questions, config.sampler, { step, seed: config.seed });
    const tokens = rows.reduce((n, r) => n + r.completion_ids.length, 0);
    const seconds = (Date.now() - start) / 1000;
    log.info(`sampler: ${rows.length} completions, ${tokens} tokens in ${seconds.toFixed(1)}s (${Math.round(tokens / seconds)} tokens/s)`);
    writeJsonAtomic(layout.configPath, config);
    writeParquet(layout.rolloutsPath(step), rolloutsSpec, rows);
    log.info(`sampler: wrote ${layout.rolloutsPath(step)}`);
    return { step, path: layout.rolloutsPath(step), rows: rows.length };
  } finally {
    policy.dispose();
  }
}
