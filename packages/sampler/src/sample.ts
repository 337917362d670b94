import type { RolloutRow, SamplerConfig } from '@empo/core';
import { EmpoError, Rng, progress } from '@empo/core';
import type { Policy, TextTokenizer } from '@empo/policy';
import type { OpenAIClient } from '@empo/server';
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
    const promptIds = prompts.map((p) => policy.encodePrompt(p, { chat: config.chat }));
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

/**
 * The same through an OpenAI-compatible server (sampler.engine: openai): G completions per question from
 * /v1/completions (n = G), with the sampled tokens' log-probs. Prompt ids come from the local tokenizer (the
 * server must serve a model with the same tokenizer); completion ids come from the server when it returns
 * them as token ids (vLLM's and `empo serve`'s return_tokens_as_token_ids), else from re-tokenizing the text.
 * Servers report log-probs before temperature and top-p, and no log-prob for the EOS token (appended here
 * when the completion finished with 0): train with trainer.old_logprobs = recompute.
 */
export async function sampleRolloutsRemote(
  client: OpenAIClient,
  tokenizer: TextTokenizer,
  questions: readonly { question_id: string; question: string }[],
  config: SamplerConfig,
  options: SampleOptions,
): Promise<RolloutRow[]> {
  const G = config.num_generations;
  const seed = Rng.derive(options.seed, 'sample', options.step).nextUint32();
  const prompts = questions.map((q) => renderPrompt(config.prompt_template, q.question));
  const bar = progress(`sample step ${options.step} (openai)`, questions.length * G);
  const out = await client.complete(prompts, {
    maxTokens: config.max_new_tokens, temperature: config.temperature, topP: config.top_p, n: G, seed, logprobs: true,
  });
  bar.tick(questions.length * G);
  bar.stop();
  const rows: RolloutRow[] = [];
  questions.forEach((q, qi) => {
    const ids = tokenizer.encode(prompts[qi]!);
    const promptIds = tokenizer.bosId !== null && tokenizer.addBos ? [tokenizer.bosId, ...ids] : ids;
    const group = out[qi]!;
    if (group.length !== G) throw new EmpoError(`openai engine: expected ${G} completions of ${q.question_id}, got ${group.length}`);
    group.forEach((c, g) => {
      let completionIds = c.tokenIds ?? tokenizer.encode(c.text);
      let logprobs = c.logprobs && c.logprobs.length === completionIds.length ? c.logprobs : completionIds.map(() => 0);
      const finished = c.finishReason === 'stop';
      if (finished && (completionIds.length === 0 || completionIds[completionIds.length - 1] !== tokenizer.eosId)) {
        completionIds = [...completionIds, tokenizer.eosId];
        logprobs = [...logprobs, 0];
      }
      rows.push({
        step: options.step, question_id: q.question_id, question: q.question, sample_index: g, prompt: prompts[qi]!,
        completion: c.text, prompt_ids: promptIds, completion_ids: completionIds, logprobs, finished,
      });
    });
  });
  return rows;
}
