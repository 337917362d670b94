import type { RolloutRow, SamplerConfig } from '@empo/core';
import { Rng, progress } from '@empo/core';
import type { Policy } from '@empo/policy';
import { renderPrompt } from './prompt.ts';

export interface SampleOptions {
  step: number;
  seed: number;
  /** Sequences per generate() call; the groups of one question stay in one call. */
  batchSize?: number;
}

/** Sample G completions for each question: the pure part of the sampler stage. */
export function sampleRollouts(
  policy: Policy,
  questions: readonly { question_id: string; question: string }[],
  config: SamplerConfig,
  options: SampleOptions,
): RolloutRow[] {
  const G = config.num_generations;
  const groupsPerBatch = Math.max(1, Math.floor((options.batchSize ?? 256) / G));
  const rng = Rng.derive(options.seed, 'sample', options.step);
  const rows: RolloutRow[] = [];
  const bar = progress(`sample step ${options.step}`, questions.length * G);
  for (let start = 0; start < questions.length; start += groupsPerBatch) {
    const batch = questions.slice(start, start + groupsPerBatch);
    const prompts = batch.map((q) => renderPrompt(config.prompt_template, q.question));
    const promptIds = prompts.map((p) => policy.encodePrompt(p));
    const repeated = promptIds.flatMap((ids) => Array.from({ length: G }, () => ids));
    const out = policy.generate(repeated, {
      maxNewTokens: config.max_new_tokens,
      temperature: config.temperature,
      topP: config.top_p,
      seed: rng,
    });
    batch.forEach((q, qi) => {
      for (let g = 0; g < G; g++) {
        const i = qi * G + g;
        rows.push({
          step: options.step,
          question_id: q.question_id,
          question: q.question,
          sample_index: g,
          prompt: prompts[qi]!,
          completion: policy.tokenizer.decode(out.tokens[i]!),
          prompt_ids: promptIds[qi]!,
          completion_ids: out.tokens[i]!,
          logprobs: out.logprobs[i]!,
          finished: out.finished[i]!,
        });
      }
    });
    bar.tick(batch.length * G);
  }
  bar.stop();
  return rows;
}
