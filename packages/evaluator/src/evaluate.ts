import type { EvalSampleRow, EvaluatorConfig, LabeledQueryRow } from '@empo/core';
import { EmpoError, Rng, progress } from '@empo/core';
import { gradeResponse, type AnswerMode } from '@empo/grader';
import type { GenerateOptions, GenerateResult, Policy, PolicyWorkers } from '@empo/policy';
import type { OpenAIClient } from '@empo/server';
import { passAtK, questionMetrics } from './metrics.ts';

export interface EvalSummary {
  step: number;
  model: string;
  /** evalInputsKey of the configuration it was computed with (written with summary.json): reused only when it matches. */
  inputs_key?: string;
  questions: number;
  /** Greedy pass@1. */
  greedy_accuracy: number;
  /** k sampled completions per question (0: greedy only, and the sampled figures are null). */
  samples: number;
  /** mean@k: share of correct samples. */
  mean_accuracy: number | null;
  /** maj@k: the majority answer over k samples is correct. */
  maj_accuracy: number | null;
  /** Unbiased pass@k over the k samples. */
  pass_at_k: number | null;
  /** Mean semantic entropy of the k samples per question. */
  semantic_entropy: number | null;
  /** Share of greedy completions with no extractable answer. */
  unextractable: number;
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0;
}

/** One question to evaluate: its prompt, reference and how its answers are read. */
export interface EvalItem {
  benchmark?: string;
  question_id: string;
  question: string;
  reference: string;
  prompt: string;
  mode?: AnswerMode;
  choices?: readonly string[];
}

/** A per-sample row with the benchmark it belongs to (the benchmark samples table). */
export interface BenchmarkSampleRow extends EvalSampleRow {
  benchmark: string;
}

/** The eval question set with the sampler's prompt template, as items (math answers). */
export function itemsFromQueries(questions: readonly LabeledQueryRow[], promptTemplate: string, benchmark = 'eval'): EvalItem[] {
  return questions.map((q) => ({
    benchmark, question_id: q.question_id, question: q.question, reference: q.answer, prompt: promptTemplate.split('{question}').join(q.question), mode: 'math',
  }));
}

/** Grade the greedy completion (first) and the k samples of one item into rows. */
export function gradeItem(item: EvalItem, completions: readonly string[]): BenchmarkSampleRow[] {
  return completions.map((completion, j) => {
    const { extracted, correct } = gradeResponse(completion, item.reference, item.mode ?? 'math', item.choices ? { choices: item.choices } : undefined);
    return {
      benchmark: item.benchmark ?? 'eval', question_id: item.question_id, question: item.question, reference: item.reference,
      sample_index: j - 1, completion, answer: extracted, correct,
    };
  });
}

/**
 * Greedy and k sampled completions for labeled items with a loaded policy, graded against their references.
 * Rows have sample_index -1 for the greedy completion and 0..k-1 for samples.
 */
export function evaluateItems(policy: Policy, items: readonly EvalItem[], config: EvaluatorConfig, seed: number): BenchmarkSampleRow[] {
  const rows: BenchmarkSampleRow[] = [];
  const bar = progress('evaluate', items.length);
  for (const batch of evalBatches(policy, items, config, seed)) {
    const greedy = policy.generate(batch.prompts, batch.greedy);
    const sampled = batch.sampled ? policy.generate(batch.sampled.prompts, batch.sampled.opts) : null;
    rows.push(...batch.grade(greedy, sampled));
    bar.tick(batch.items.length);
  }
  bar.stop();
  return rows;
}

/**
 * `evaluateItems` with the generation split across worker threads (PolicyWorkers.generate): the same rows, bit
 * for bit.
 */
export async function evaluateItemsParallel(policy: Policy, workers: PolicyWorkers, items: readonly EvalItem[], config: EvaluatorConfig, seed: number): Promise<BenchmarkSampleRow[]> {
  const rows: BenchmarkSampleRow[] = [];
  const bar = progress('evaluate', items.length);
  for (const batch of evalBatches(policy, items, config, seed)) {
    const greedy = await workers.generate(policy, batch.prompts, batch.greedy);
    const sampled = batch.sampled ? await workers.generate(policy, batch.sampled.prompts, batch.sampled.opts) : null;
    rows.push(...batch.grade(greedy, sampled));
    bar.tick(batch.items.length);
  }
  bar.stop();
  return rows;
}

/** The generate() calls of an evaluation (a greedy and a sampled one per batch of items) and their grading. */
function* evalBatches(policy: Policy, items: readonly EvalItem[], config: EvaluatorConfig, seed: number) {
  const k = config.num_samples;
  const questionsPerBatch = Math.max(1, Math.floor(config.batch_size / (1 + k)));
  const rng = Rng.derive(seed, 'evaluate');
  for (let start = 0; start < items.length; start += questionsPerBatch) {
    const batch = items.slice(start, start + questionsPerBatch);
    const prompts = batch.map((q) => policy.encodePrompt(q.prompt, { chat: config.chat }));
    const greedy: GenerateOptions = { maxNewTokens: config.max_new_tokens, temperature: 0, topP: 1, seed: 0 };
    const sampled = k > 0
      ? {
        prompts: prompts.flatMap((p) => Array.from({ length: k }, () => p)),
        opts: { maxNewTokens: config.max_new_tokens, temperature: config.temperature, topP: config.top_p, seed: rng } as GenerateOptions,
      }
      : null;
    yield {
      items: batch,
      prompts,
      greedy,
      sampled,
      grade: (g: GenerateResult, s: GenerateResult | null): BenchmarkSampleRow[] =>
        batch.flatMap((q, i) => {
          const completions = [g.tokens[i]!, ...Array.from({ length: k }, (_, j) => s!.tokens[i * k + j]!)];
          return gradeItem(q, completions.map((t) => policy.tokenizer.decode(t)));
        }),
    };
  }
}

/**
 * The same through an OpenAI-compatible server (engine: openai): one greedy completion (temperature 0) and
 * k samples per prompt from /v1/completions. Prompts are sent as text; the server applies its tokenizer.
 */
export async function evaluateItemsRemote(client: OpenAIClient, items: readonly EvalItem[], config: EvaluatorConfig, seed: number): Promise<BenchmarkSampleRow[]> {
  if (config.chat) throw new EmpoError('evaluator.chat with engine openai is not supported yet: render the chat template into evaluator.benchmarks[].template instead');
  const prompts = items.map((q) => q.prompt);
  const bar = progress('evaluate (openai)', items.length);
  const greedy = await client.complete(prompts, { maxTokens: config.max_new_tokens, temperature: 0, topP: 1, n: 1 });
  const k = config.num_samples;
  const sampled = k > 0
    ? await client.complete(prompts, { maxTokens: config.max_new_tokens, temperature: config.temperature, topP: config.top_p, n: k, seed: Rng.derive(seed, 'evaluate').nextUint32() })
    : null;
  const rows = items.flatMap((q, i) => {
    const samples = sampled ? sampled[i]!.map((c) => c.text) : [];
    if (samples.length !== k) throw new EmpoError(`openai engine: expected ${k} samples for ${q.question_id}, got ${samples.length}`);
    return gradeItem(q, [greedy[i]![0]!.text, ...samples]);
  });
  bar.tick(items.length);
  bar.stop();
  return rows;
}

/**
 * Greedy and k sampled completions for labeled questions, graded against their references.
 * Rows have sample_index -1 for the greedy completion and 0..k-1 for samples.
 */
export function evaluatePolicy(
  policy: Policy,
  questions: readonly LabeledQueryRow[],
  config: EvaluatorConfig,
  promptTemplate: string,
  seed: number,
): EvalSampleRow[] {
  return evaluateItems(policy, itemsFromQueries(questions, promptTemplate), { ...config, chat: false }, seed)
    .map(({ benchmark: _, ...row }) => row);
}

/** `evaluatePolicy` with the generation on worker threads (the same rows); in this thread without workers. */
export async function evaluatePolicyParallel(
  policy: Policy,
  workers: PolicyWorkers | null,
  questions: readonly LabeledQueryRow[],
  config: EvaluatorConfig,
  promptTemplate: string,
  seed: number,
): Promise<EvalSampleRow[]> {
  if (!workers || workers.size < 2) return evaluatePolicy(policy, questions, config, promptTemplate, seed);
  return (await evaluateItemsParallel(policy, workers, itemsFromQueries(questions, promptTemplate), { ...config, chat: false }, seed))
    .map(({ benchmark: _, ...row }) => row);
}

export function summarize(step: number, model: string, rows: readonly EvalSampleRow[]): EvalSummary {
  const greedy = rows.filter((r) => r.sample_index === -1);
  const byQuestion = new Map<string, EvalSampleRow[]>();
  for (const r of rows) {
    if (r.sample_index < 0) continue;
    let list = byQuestion.get(r.question_id);
    if (!list) byQuestion.set(r.question_id, (list = []));
    list.push(r);
  }
  const k = byQuestion.size ? [...byQuestion.values()][0]!.length : 0;
  const per = [...byQuestion.values()].map((list) => questionMetrics({ answers: list.map((r) => r.answer), correct: list.map((r) => r.correct) }));
  return {
    step,
    model,
    questions: greedy.length,
    greedy_accuracy: mean(greedy.map((r) => (r.correct ? 1 : 0))),
    samples: k,
    mean_accuracy: k ? mean(per.map((p) => p.mean)) : null,
    maj_accuracy: k ? mean(per.map((p) => p.majority)) : null,
    pass_at_k: k ? mean(per.map((p) => passAtK(k, p.correct, k))) : null,
    semantic_entropy: k ? mean(per.map((p) => p.entropy)) : null,
    unextractable: mean(greedy.map((r) => (r.answer === null ? 1 : 0))),
  };
}

/** Summary of a multi-benchmark evaluation: each benchmark's figures and their unweighted mean. */
export interface BenchmarkEvalSummary extends EvalSummary {
  /** Per benchmark, in the order evaluated; the top-level figures are their mean (macro average). */
  benchmarks: Record<string, EvalSummary>;
}

export function summarizeBenchmarks(step: number, model: string, rows: readonly BenchmarkSampleRow[]): BenchmarkEvalSummary {
  const names = [...new Set(rows.map((r) => r.benchmark))];
  const benchmarks = Object.fromEntries(names.map((n) => [n, summarize(step, model, rows.filter((r) => r.benchmark === n))]));
  const list = Object.values(benchmarks);
  const avg = (f: (s: EvalSummary) => number | null): number | null => {
    const xs = list.map(f);
    return xs.some((x) => x === null) ? null : mean(xs as number[]);
  };
  return {
    step, model,
    questions: list.reduce((a, s) => a + s.questions, 0),
    greedy_accuracy: avg((s) => s.greedy_accuracy)!,
    samples: list[0]?.samples ?? 0,
    mean_accuracy: avg((s) => s.mean_accuracy),
    maj_accuracy: avg((s) => s.maj_accuracy),
    pass_at_k: avg((s) => s.pass_at_k),
    semantic_entropy: avg((s) => s.semantic_entropy),
    unextractable: avg((s) => s.unextractable)!,
    benchmarks,
  };
}
