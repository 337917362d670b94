import type { RolloutRow, SamplerConfig } from '@empo/core';
import { EmpoError, Rng, progress } from '@empo/core';
import type { GenerateOptions, GenerateResult, Policy, PolicyWorkers, TextTokenizer } from '@empo/policy';
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
  const rows: RolloutRow[] = [];
  const bar = progress(`sample step ${options.step}`, questions.length * config.num_generations);
  for (const batch of batches(policy, questions, config, options)) {
    const out = policy.generate(batch.promptIds, batch.opts);
    rows.push(...batch.rows(out));
    bar.tick(batch.size);
  }
  bar.stop();
  return rows;
}

/**
 * `sampleRollouts` with the generation split across worker threads (PolicyWorkers.generate): the same rollouts,
 * row for row and bit for bit (each sequence keeps its own random stream and padding).
 */
export async function sampleRolloutsParallel(
  policy: Policy,
  workers: PolicyWorkers,
  questions: readonly { question_id: string; question: string }[],
  config: SamplerConfig,
  options: SampleOptions,
): Promise<RolloutRow[]> {
  const rows: RolloutRow[] = [];
  const bar = progress(`sample step ${options.step}`, questions.length * config.num_generations);
  for (const batch of batches(policy, questions, config, options)) {
    const out = await workers.generate(policy, batch.promptIds, batch.opts);
    rows.push(...batch.rows(out));
    bar.tick(batch.size);
  }
  bar.stop();
  return rows;
}

/** The generate() calls of a step: groups of whole questions (G rows each), and how their outputs become rows. */
function* batches(policy: Policy, questions: readonly { question_id: string; question: string }[], config: SamplerConfig, options: SampleOptions) {
  const G = config.num_generations;
  const groupsPerBatch = Math.max(1, Math.floor((options.batchSize ?? 256) / G));
  const rng = Rng.derive(options.seed, 'sample', options.step);
  for (let start = 0; start < questions.length; start += groupsPerBatch) {
    const batch = questions.slice(start, start + groupsPerBatch);
    const prompts = batch.map((q) => renderPrompt(config.prompt_template, q.question));
    const promptIds = prompts.map((p) => policy.encodePrompt(p, { chat: config.chat }));
    const opts: GenerateOptions = { maxNewTokens: config.max_new_tokens, temperature: config.temperature, topP: config.top_p, seed: rng };
    yield {
      size: batch.length * G,
      promptIds: promptIds.flatMap((ids) => Array.from({ length: G }, () => ids)),
      opts,
      rows: (out: GenerateResult): RolloutRow[] =>
        batch.flatMap((q, qi) =>
          Array.from({ length: G }, (_, g) => {
            const i = qi * G + g;
            return {
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
            };
          }),
        ),
    };
  }
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
