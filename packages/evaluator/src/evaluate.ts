import type { EvalSampleRow, EvaluatorConfig, LabeledQueryRow } from '@empo/core';
import { progress } from '@empo/core';
import { gradeResponse } from '@empo/grader';
import type { Policy } from '@empo/policy';

export interface EvalSummary {
  step: number;
  model: string;
  questions: number;
  greedy_accuracy: number;
  /** Share of greedy completions from which no answer could be extracted. */
  unextractable: number;
}

/** Greedy completions for labeled questions, graded against their reference answers. */
export function evaluateGreedy(
  policy: Policy,
  questions: readonly LabeledQueryRow[],
  config: EvaluatorConfig,
  promptTemplate: string,
): EvalSampleRow[] {
  const rows: EvalSampleRow[] = [];
  const bar = progress('evaluate', questions.length);
  for (let start = 0; start < questions.length; start += config.batch_size) {
    const batch = questions.slice(start, start + config.batch_size);
    const prompts = batch.map((q) => promptTemplate.split('{question}').join(q.question));
    const out = policy.generate(prompts.map((p) => policy.encodePrompt(p)), {
      maxNewTokens: config.max_new_tokens,
      temperature: 0,
      topP: 1,
      seed: 0,
    });
    batch.forEach((q, i) => {
      const completion = policy.tokenizer.decode(out.tokens[i]!);
      const { extracted, correct } = gradeResponse(completion, q.answer, 'math');
      rows.push({
        question_id: q.question_id,
        question: q.question,
        reference: q.answer,
        sample_index: -1,
        completion,
        answer: extracted,
        correct,
      });
    });
    bar.tick(batch.length);
  }
  bar.stop();
  return rows;
}

export function summarize(step: number, model: string, rows: readonly EvalSampleRow[]): EvalSummary {
  const n = rows.length;
  return {
    step,
    model,
    questions: n,
    greedy_accuracy: n ? rows.filter((r) => r.correct).length / n : 0,
    unextractable: n ? rows.filter((r) => r.answer === null).length / n : 0,
  };
}
