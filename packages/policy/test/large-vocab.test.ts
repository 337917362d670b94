/**
 * A model with Qwen's 151,936-entry vocabulary and the real Qwen tokenizer (tiny hidden size): the paths that
 * must not build [tokens, vocab] one-hots (embedding gradient, log-prob pick, teacher-forced log-probs) and
 * sampling over a large vocabulary, on wasm, checked against cpu and against log_softmax of the logits.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, test } from 'vitest';
import { loadTokenizer, parseModelConfig, Policy, type TextTokenizer } from '../src/index.ts';
import { maxAbsDiff, withBackend } from './helpers.ts';
import { QWEN_TOKENIZER_DIR } from './hf-fixtures.ts';
import { referenceLogprobs } from './reference.ts';

let tok: TextTokenizer;
let policy: Policy;
const config = parseModelConfig({
  model_type: 'qwen2',
  vocab_size: 151936, // Qwen2.5's (the tokenizer has 151,669 ids)
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  tie_word_embeddings: true,
  eos_token_id: 151645,
});

beforeAll(async () => {
  await withBackend('wasm');
  tok = await loadTokenizer(QWEN_TOKENIZER_DIR);
  policy = Policy.init(config, tok, 3);
  // larger embeddings: logits that differ by several units between tokens
  const e = policy.namedVariables().get('model.embed_tokens.weight')!;
  e.assign(tf.tidy(() => tf.mul(e, 8)));
});

const PROMPTS = ['What is 12+30?', '计算 7 × 6'];
const COMPLETIONS = [' The answer is 42.', ' 答案是 42'];

describe('151,936-token vocabulary', () => {
  test('completionLogprobs (no one-hot, lm_head on the needed rows only) equals log_softmax of the logits', () => {
    const prompts = PROMPTS.map((p) => policy.encodePrompt(p, { chat: true }));
    expect(prompts[0]!.slice(0, 3)).toEqual([151644, 872, 198]); // <|im_start|>user\n (Qwen3's template adds no default system turn)
    const comps = COMPLETIONS.map((c) => tok.encode(c));
    const got = policy.completionLogprobs(prompts, comps);
    prompts.forEach((p, i) => {
      const seq = [...p, ...comps[i]!];
      const logits = tf.tidy(() => (policy.logits([seq]).arraySync() as number[][][])[0]!);
      const want = referenceLogprobs(logits, seq.slice(1)).slice(p.length - 1);
      expect(maxAbsDiff(got[i], want)).toBeLessThan(1e-3);
      expect(Math.min(...got[i]!)).toBeLessThan(-5);
    });
    // the differentiable path gives the same values
    const seqs = prompts.map((p, i) => [...p, ...comps[i]!]);
    const diff = tf.tidy(() => policy.sequenceLogprobs(seqs).arraySync());
    prompts.forEach((p, i) => expect(maxAbsDiff(diff[i]!.slice(p.length - 1, p.length - 1 + comps[i]!.length), got[i])).toBeLessThan(1e-3));
  });

  test('gradients (scatterND embedding gradient, gather pick) on wasm equal cpu', async () => {
    const seqs = PROMPTS.map((p, i) => tok.encode(p + COMPLETIONS[i]));
    const grads = () => {
      const vars = policy.variables();
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(policy.sequenceLogprobs(seqs), tf.linspace(0.5, 2, seqs[0]!.length - 1))) as tf.Scalar, vars);
      const out = { value: value.dataSync()[0]!, grads: policy.variables().map((v) => Array.from(grads[v.name]!.dataSync())) };
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const wasm = grads();
    await withBackend('cpu');
    const cpu = grads();
    await withBackend('wasm');
    expect(Math.abs(wasm.value - cpu.value)).toBeLessThan(1e-3 * Math.abs(cpu.value));
    wasm.grads.forEach((g, i) => {
      const scale = cpu.grads[i]!.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      expect(scale).toBeGreaterThan(0);
      expect(maxAbsDiff(g, cpu.grads[i]) / scale).toBeLessThan(1e-3);
    });
    // only the rows of tokens that occur get an embedding gradient from the input side... and every row
    // from the tied lm_head (softmax over the whole vocabulary)
    expect(wasm.grads[0]!.length).toBe(151936 * 16);
  });

  test('sampling with top-p over the large vocabulary: valid tokens, reproducible, old log-probs = teacher-forced', () => {
    const prompts = PROMPTS.map((p) => policy.encodePrompt(p));
    const opts = { maxNewTokens: 12, temperature: 1, topP: 0.9, seed: 11, stopAtEos: false };
    const a = policy.generate(prompts, opts);
    const b = policy.generate(prompts, opts);
    expect(a).toEqual(b);
    expect(a.tokens.flat().every((t) => t >= 0 && t < 151936)).toBe(true);
    const teacher = policy.completionLogprobs(prompts, a.tokens);
    expect(maxAbsDiff(a.logprobs, teacher)).toBeLessThan(1e-3);
    expect(new Set(a.tokens.flat()).size).toBeGreaterThan(12); // a spread distribution: sampling matters
    const u = policy.generateUncached(prompts, opts);
    expect(u.tokens).toEqual(a.tokens);
    expect(maxAbsDiff(u.logprobs, a.logprobs)).toBeLessThan(1e-4);
  });

  test('no tensors leak', () => {
    const prompts = PROMPTS.map((p) => policy.encodePrompt(p));
    const before = tf.memory().numTensors;
    policy.generate(prompts, { maxNewTokens: 4, temperature: 0 });
    policy.completionLogprobs(prompts, [[1, 2], [3]]);
    policy.sequenceLogprobs(prompts).dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
