import type { EvalSampleRow, EvaluatorConfig, LabeledQueryRow } from '@empo/core';
import { Rng, progress } from '@empo/core';
import { gradeResponse } from '@empo/grader';
import type { Policy } from '@empo/policy';
import { passAtK, questionMetrics } from './metrics.ts';

export interface EvalSummary {
  step: number;
  model: string;
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
  const k = config.num_samples;
  const rows: EvalSampleRow[] = [];
  const perQuestion = 1 + k;
  const questionsPerBatch = Math.max(1, Math.floor(config.batch_size / perQuestion));
  const rng = Rng.derive(seed, 'evaluate');
  const bar = progress('evaluate', questions.length);
  for (let start = 0; start < questions.length; start += questionsPerBatch) {
    const batch = questions.slice(start, start + questionsPerBatch);
    const prompts = batch.map((q) => policy.encodePrompt(promptTemplate.split('{question}').join(q.question)));
    const greedy = policy.generate(prompts, { maxNewTokens: config.max_new_tokens, temperature: 0, topP: 1, seed: 0 });
    const sampled = k > 0
      ? policy.generate(prompts.flatMap((p) => Array.from({ length: k }, () => p)), {
        maxNewTokens: config.max_new_tokens, temperature: config.temperature, topP: config.top_p, seed: rng,
      })
      : null;
    batch.forEach((q, i) => {
      const completions = [greedy.tokens[i]!, ...Array.from({ length: k }, (_, s) => sampled!.tokens[i * k + s]!)];
      completions.forEach((tokens, j) => {
        const completion = policy.tokenizer.decode(tokens);
        const { extracted, correct } = gradeResponse(completion, q.answer, 'math');
        rows.push({ question_id: q.question_id, question: q.question, reference: q.answer, sample_index: j - 1, completion, answer: extracted, correct });
      });
    });
    bar.tick(batch.length);
  }
  bar.stop();
  return rows;
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
