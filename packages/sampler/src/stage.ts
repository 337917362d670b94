import {
  EmpoError, RunLayout, encodeParquet, log, queriesSpec, readParquetRows, rolloutsSpec, selectBackend, writeFileNow, writeJsonAtomic, writeParquet,
  type EmpoConfig, type FileWriter, type QueryRow, type RolloutRow,
} from '@empo/core';
import { Policy, loadTokenizer, formatMemory, startWorkers, type PolicyWorkers } from '@empo/policy';
import { OpenAIClient } from '@empo/server';
import { checkRunInputs } from './inputs.ts';
import { questionsForStep } from './select.ts';
import { sampleRollouts, sampleRolloutsParallel, sampleRolloutsRemote } from './sample.ts';

/** The training questions, checked: a missing, mistyped or empty file is an error naming it. */
export function readTrainQueries(config: EmpoConfig): QueryRow[] {
  const queries = readParquetRows<QueryRow>(config.train_queries, queriesSpec);
  if (queries.length === 0) throw new EmpoError(`${config.train_queries}: the question set is empty`);
  return queries;
}

/**
 * Sample step `step` with a loaded policy and write <run>/step-k/rollouts.parquet (and the run's config.json) now;
 * or, given `write`, hand rollouts.parquet to it (`empo train`: written in the background; the loop writes
 * config.json once).
 */
export function sampleStep(policy: Policy, queries: readonly QueryRow[], config: EmpoConfig, step: number, write?: FileWriter): RolloutRow[] {
  const questions = questionsForStep(queries, step, config.sampler.questions_per_step, config.seed);
  const start = Date.now();
  return writeRollouts(config, step, sampleRollouts(policy, questions, config.sampler, { step, seed: config.seed }), start, write);
}

/** `sampleStep` with generation split across worker threads (the same rollouts); in this thread without workers. */
export async function sampleStepParallel(
  policy: Policy, workers: PolicyWorkers | null, queries: readonly QueryRow[], config: EmpoConfig, step: number, write?: FileWriter,
): Promise<RolloutRow[]> {
  if (!workers || workers.size < 2) return sampleStep(policy, queries, config, step, write);
  const questions = questionsForStep(queries, step, config.sampler.questions_per_step, config.seed);
  const start = Date.now();
  return writeRollouts(config, step, await sampleRolloutsParallel(policy, workers, questions, config.sampler, { step, seed: config.seed }), start, write);
}

function writeRollouts(config: EmpoConfig, step: number, rows: RolloutRow[], start: number, write?: FileWriter): RolloutRow[] {
  const layout = RunLayout.fromConfig(config);
  const tokens = rows.reduce((n, r) => n + r.completion_ids.length, 0);
  const seconds = (Date.now() - start) / 1000;
  log.info(`sampler: step ${step}, ${rows.length} completions, ${tokens} tokens in ${seconds.toFixed(1)}s (${Math.round(tokens / seconds)} tokens/s); memory ${formatMemory()}`);
  if (!write) writeJsonAtomic(layout.configPath, config);
  (write ?? writeFileNow)(layout.rolloutsPath(step), () => encodeParquet(rolloutsSpec, rows));
  return rows;
}

/** The sampler stage: queries + latest checkpoint -> <run>/step-k/rollouts.parquet for the next step k. */
export async function runSampler(config: EmpoConfig): Promise<{ step: number; path: string; rows: number }> {
  const layout = RunLayout.fromConfig(config);
  const step = layout.nextStep();
  const queries = readTrainQueries(config);
  checkRunInputs(config, queries);
  if (config.sampler.engine === 'openai') {
    const modelDir = layout.modelDir(step - 1);
    const client = OpenAIClient.fromConfig(config.openai);
    const model = await client.resolveModel();
    if (config.trainer.old_logprobs === 'sampler') {
      log.warn('sampler.engine openai: the server\'s log-probs are taken before temperature/top-p and have none for EOS; set trainer.old_logprobs=recompute');
    }
    log.info(`sampler: step ${step}, ${config.sampler.questions_per_step} questions x ${config.sampler.num_generations} from ${config.openai.base_url} (model ${model}); tokenizer of ${modelDir}`);
    const tokenizer = await loadTokenizer(modelDir);
    const questions = questionsForStep(queries, step, config.sampler.questions_per_step, config.seed);
    const rows = await sampleRolloutsRemote(client, tokenizer, questions, config.sampler, { step, seed: config.seed });
    writeJsonAtomic(layout.configPath, config);
    writeParquet(layout.rolloutsPath(step), rolloutsSpec, rows);
    log.info(`sampler: wrote ${layout.rolloutsPath(step)}`);
    return { step, path: layout.rolloutsPath(step), rows: rows.length };
  }
  const backend = await selectBackend(config.backend);
  const modelDir = layout.modelDir(step - 1);
  log.info(`sampler: step ${step}, model ${modelDir}, ${config.sampler.questions_per_step} questions x ${config.sampler.num_generations}`);
  const policy = await Policy.load(modelDir);
  // Worker threads only when the config asks for them: for one stage on a small model they cost more than they save.
  let workers: PolicyWorkers | null = null;
  try {
    workers = await startWorkers(config.workers ?? 1, { backend, model: policy });
    const rows = await sampleStepParallel(policy, workers, queries, config, step);
    log.info(`sampler: wrote ${layout.rolloutsPath(step)}`);
    return { step, path: layout.rolloutsPath(step), rows: rows.length };
  } finally {
    await workers?.close();
    policy.dispose();
  }
}
