import { join } from 'node:path';
import {
  EmpoError, RunLayout, evalSamplesSpec, labeledQueriesSpec, log, readParquetRows, selectBackend, writeJsonAtomic, writeParquet,
  type EmpoConfig, type LabeledQueryRow,
} from '@empo/core';
import { Policy } from '@empo/policy';
import { evaluateGreedy, summarize, type EvalSummary } from './evaluate.ts';

/**
 * The evaluator stage: the checkpoint of `step` (default: the latest; 0 = base model) on the
 * labeled evaluation set -> <run>/eval/step-k/samples.parquet and summary.json.
 */
export async function runEvaluator(config: EmpoConfig, step?: number): Promise<EvalSummary> {
  const layout = RunLayout.fromConfig(config);
  const target = step ?? layout.latestCheckpointStep();
  if (target > 0 && !layout.checkpointSteps().includes(target)) {
    throw new EmpoError(`${layout.checkpointDir(target)}: no complete checkpoint for step ${target}`);
  }
  let questions = readParquetRows<LabeledQueryRow>(config.eval_queries, labeledQueriesSpec);
  if (questions.length === 0) throw new EmpoError(`${config.eval_queries}: the evaluation set is empty`);
  if (config.evaluator.limit !== null) questions = questions.slice(0, config.evaluator.limit);
  await selectBackend(config.backend);
  const modelDir = layout.modelDir(target);
  const policy = await Policy.load(modelDir);
  try {
    log.info(`evaluator: step ${target} (${modelDir}) on ${questions.length} questions`);
    const rows = evaluateGreedy(policy, questions, config.evaluator, config.sampler.prompt_template);
    const summary = summarize(target, modelDir, rows);
    const dir = layout.evalDir(target);
    writeParquet(join(dir, 'samples.parquet'), evalSamplesSpec, rows);
    writeJsonAtomic(join(dir, 'summary.json'), summary);
    log.info(`evaluator: greedy accuracy ${(summary.greedy_accuracy * 100).toFixed(1)}% -> ${dir}`);
    return summary;
  } finally {
    policy.dispose();
  }
}
