import { join } from 'node:path';
import {
  EmpoError, RunLayout, evalSamplesSpec, labeledQueriesSpec, log, readParquetRows, selectBackend, writeJsonAtomic, writeParquet,
  type EmpoConfig, type EvalSampleRow, type LabeledQueryRow,
} from '@empo/core';
import { Policy, type PolicyWorkers } from '@empo/policy';
import { OpenAIClient } from '@empo/server';
import { loadBenchmarks } from './benchmarks.ts';
import { evalInputsKey } from './inputs.ts';
import {
  evaluateItems, evaluateItemsRemote, evaluatePolicy, evaluatePolicyParallel, itemsFromQueries, summarize, summarizeBenchmarks,
  type BenchmarkEvalSummary, type BenchmarkSampleRow, type EvalItem, type EvalSummary,
} from './evaluate.ts';
import type { TableSpec } from '@empo/core';

/** Per-sample results of a benchmark evaluation: the eval samples table plus the benchmark's name. */
export const benchmarkSamplesSpec: TableSpec = {
  name: 'benchmark eval samples',
  doc: 'Per-sample evaluation results with their benchmark, so any answer can be traced.',
  columns: [{ name: 'benchmark', type: 'utf8', doc: 'Benchmark name (eval for the eval_queries file).' }, ...evalSamplesSpec.columns],
};

/** What the evaluator runs on: the configured benchmarks, else the eval_queries file with the sampler's template. */
export function evalItems(config: EmpoConfig): EvalItem[] {
  if (config.evaluator.benchmarks.length === 0) return itemsFromQueries(readEvalQueries(config), config.sampler.prompt_template);
  const items = loadBenchmarks(config.evaluator.benchmarks, config.evaluator.datasets_dir);
  if (config.evaluator.limit === null) return items;
  // evaluator.limit applies per benchmark.
  const count = new Map<string, number>();
  return items.filter((it) => {
    const n = (count.get(it.benchmark!) ?? 0) + 1;
    count.set(it.benchmark!, n);
    return n <= config.evaluator.limit!;
  });
}

/** Write <dir>/samples.parquet (with the benchmark column) and summary.json; log one line per benchmark. */
export function writeEvalResults(config: EmpoConfig, step: number, model: string, rows: BenchmarkSampleRow[]): BenchmarkEvalSummary {
  const layout = RunLayout.fromConfig(config);
  const summary = { ...summarizeBenchmarks(step, model, rows), inputs_key: evalInputsKey(config) };
  const dir = layout.evalDir(step);
  writeParquet(join(dir, 'samples.parquet'), benchmarkSamplesSpec, rows);
  writeJsonAtomic(join(dir, 'summary.json'), summary);
  const names = Object.keys(summary.benchmarks);
  if (names.length > 1) {
    for (const [name, s] of Object.entries(summary.benchmarks)) {
      log.info(`evaluator: ${name}: greedy ${pct(s.greedy_accuracy)}, mean@${s.samples} ${pct(s.mean_accuracy)}, maj@${s.samples} ${pct(s.maj_accuracy)}, pass@${s.samples} ${pct(s.pass_at_k)} (${s.questions} questions)`);
    }
  }
  log.info(
    `evaluator: step ${step}${names.length > 1 ? ' (mean over benchmarks)' : ''} greedy ${pct(summary.greedy_accuracy)}, mean@${summary.samples} ${pct(summary.mean_accuracy)}, ` +
      `maj@${summary.samples} ${pct(summary.maj_accuracy)}, semantic entropy ${summary.semantic_entropy?.toFixed(3) ?? '-'} -> ${dir}`,
  );
  return summary;
}

/** The labeled evaluation questions (first evaluator.limit of them), checked. */
export function readEvalQueries(config: EmpoConfig): LabeledQueryRow[] {
  const questions = readParquetRows<LabeledQueryRow>(config.eval_queries, labeledQueriesSpec);
  if (questions.length === 0) throw new EmpoError(`${config.eval_queries}: the evaluation set is empty`);
  return config.evaluator.limit === null ? questions : questions.slice(0, config.evaluator.limit);
}

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);

/** Evaluate a loaded policy as the model of `step` and write <run>/eval/step-k/{samples.parquet,summary.json}. */
export function evaluateStep(policy: Policy, questions: readonly LabeledQueryRow[], config: EmpoConfig, step: number, model: string): EvalSummary {
  return writeStepResults(config, step, model, evaluatePolicy(policy, questions, config.evaluator, config.sampler.prompt_template, config.seed));
}

/** `evaluateStep` with the generation on worker threads (the same results); in this thread without workers. */
export async function evaluateStepParallel(
  policy: Policy, workers: PolicyWorkers | null, questions: readonly LabeledQueryRow[], config: EmpoConfig, step: number, model: string,
): Promise<EvalSummary> {
  const rows = await evaluatePolicyParallel(policy, workers, questions, config.evaluator, config.sampler.prompt_template, config.seed);
  return writeStepResults(config, step, model, rows);
}

function writeStepResults(config: EmpoConfig, step: number, model: string, rows: EvalSampleRow[]): EvalSummary {
  const layout = RunLayout.fromConfig(config);
  const summary = { ...summarize(step, model, rows), inputs_key: evalInputsKey(config) };
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
  if (config.evaluator.engine === 'openai') {
    // The model is whatever the server serves; `step` only names the result folder (default 0).
    const items = evalItems(config);
    const client = OpenAIClient.fromConfig(config.openai);
    const model = await client.resolveModel();
    const target = step ?? 0;
    log.info(`evaluator: ${items.length} questions through ${config.openai.base_url} (model ${model}) as step ${target}`);
    const rows = await evaluateItemsRemote(client, items, config.evaluator, config.seed);
    return writeEvalResults(config, target, `openai:${model}`, rows);
  }
  const target = step ?? layout.latestCheckpointStep();
  if (target > 0 && !layout.checkpointSteps().includes(target)) {
    throw new EmpoError(`${layout.checkpointDir(target)}: no complete checkpoint for step ${target}`);
  }
  if (config.evaluator.benchmarks.length > 0) {
    const items = evalItems(config);
    await selectBackend(config.backend);
    const modelDir = layout.modelDir(target);
    const policy = await Policy.load(modelDir);
    try {
      log.info(`evaluator: step ${target} (${modelDir}) on ${items.length} questions of ${config.evaluator.benchmarks.length} benchmark(s)`);
      return writeEvalResults(config, target, modelDir, evaluateItems(policy, items, config.evaluator, config.seed));
    } finally {
      policy.dispose();
    }
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
