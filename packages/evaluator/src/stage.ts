import { join } from 'node:path';
import {
  EmpoError, RunLayout, evalSamplesSpec, labeledQueriesSpec, log, readParquetRows, selectBackend, writeJsonAtomic, writeParquet,
  type EmpoConfig, type LabeledQueryRow,
} from '@empo/core';
import { Policy } from '@empo/policy';
import { evaluatePolicy, summarize, type EvalSummary } from './evaluate.ts';

/** The labeled evaluation questions (first evaluator.limit of them), checked. */
export function readEvalQueries(config: EmpoConfig): LabeledQueryRow[] {
  const questions = readParquetRows<LabeledQueryRow>(config.eval_queries, labeledQueriesSpec);
  if (questions.length === 0) throw new EmpoError(`${config.eval_queries}: the evaluation set is empty`);
  return config.evaluator.limit === null ? questions : questions.slice(0, config.evaluator.limit);
}

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);

/** Evaluate a loaded policy as the model of `step` and write <run>/eval/step-k/{samples.parquet,summary.json}. */
export function evaluateStep(policy: Policy, questions: readonly LabeledQueryRow[], config: EmpoConfig, step: number, model: string): EvalSummary {
  const layout = RunLayout.fromConfig(config);
  const rows = evaluatePolicy(policy, questions, config.evaluator, config.sampler.prompt_template, config.seed);
  const summary = summarize(step, model, rows);
  const dir = layout.evalDir(step);
  writeParquet(join(dir, 'samples.parquet'), evalSamplesSpec, rows);
  writeJsonAtomic(join(dir, 'summary.json'), summary);
  log.info(
    `evaluator: step ${step} greedy ${pct(summary.greedy_accuracy)}, mean@${summary.samples} ${pct(summary.mean_accuracy)}, ` +
      `maj@${summary.samples} ${pct(summary.maj_accuracy)}, semantic entropy ${summary.semantic_entropy?.toFixed(3) ?? '-'} -> ${dir}`,
  );
  return summary;
}

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
  const questions = readEvalQueries(config);
  await selectBackend(config.backend);
  const modelDir = layout.modelDir(target);
  const policy = await Policy.load(modelDir);
  try {
    log.info(`evaluator: step ${target} (${modelDir}) on ${questions.length} questions`);
    return evaluateStep(policy, questions, config, target, modelDir);
  } finally {
    policy.dispose();
  }
}
