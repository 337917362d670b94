/**
 * The transformer against a direct JS implementation of the Qwen2 formulas, and padding invariances.
 * Backend: cpu (deterministic reference kernels).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@empo/core';
import { beforeAll, describe, expect, test } from 'vitest';
import { forward, initWeights, Policy, preferLazyLayers, prepareWeights, tinyConfig, weightSpecs, type HostTensor, type ModelConfig } from '../src/index.ts';
import { maxAbsDiff, sharpPolicy, testTokenizer, withBackend } from './helpers.ts';
import { referenceLogits } from './reference.ts';

type Mat = number[][];

beforeAll(() => withBackend('cpu'));

/** Host weights with every tensor random (including norms and biases), so every term of the formula matters. */
function randomWeights(cfg: ModelConfig, seed: number): Map<string, HostTensor> {
  const w = initWeights(cfg, seed);
  for (const s of weightSpecs(cfg)) {
    const rng = Rng.derive(seed, 'test', s.name);
    const t = w.get(s.name)!;
    for (let i = 0; i < t.data.length; i++) {
      t.data[i] = s.init === 'ones' ? 1 + 0.3 * rng.normal() : s.init === 'zeros' ? 0.5 * rng.normal() : 0.4 * rng.normal();
    }
  }
  return w;
}

function policyLogits(p: Policy, ids: number[]): Mat {
  return tf.tidy(() => (p.logits([ids]).arraySync() as number[][][])[0]!);
}

describe('forward pass equals the Qwen2 formulas', () => {
  const tok = testTokenizer();
  const cases: [string, Partial<Parameters<typeof tinyConfig>[0]>][] = [
    ['1 layer, GQA (4 heads, 2 kv heads), q/k/v biases, untied lm_head', { numLayers: 1, numHeads: 4, numKvHeads: 2, attentionBias: true, tieWordEmbeddings: false }],
    ['2 layers, MHA, no biases, tied embeddings, rope_theta 1e6', { numLayers: 2, numHeads: 2, numKvHeads: 2, attentionBias: false, tieWordEmbeddings: true, ropeTheta: 1e6 }],
    ['1 layer, multi-query (1 kv head), explicit head_dim != hidden/heads', { numLayers: 1, numHeads: 4, numKvHeads: 1, headDim: 6 }],
  ];
  for (const [name, sizes] of cases) {
    test(name, () => {
      const cfg = tinyConfig({ vocabSize: tok.vocabSize, hiddenSize: 16, intermediateSize: 24, ...sizes });
      const weights = randomWeights(cfg, 7);
      const p = Policy.fromWeights(cfg, tok, weights);
      const ids = tok.encode('what is 12+30?');
      const want = referenceLogits(cfg, weights, ids);
      const got = policyLogits(p, ids);
      // Logits are O(10) here; float32 vs float64.
      expect(maxAbsDiff(got, want)).toBeLessThan(2e-4);
      // and the values are not trivially equal across positions / tokens
      expect(Math.abs(want[3]![5]! - want[4]![5]!)).toBeGreaterThan(0.1);
      p.dispose();
    });
  }
});

describe('padding', () => {
  test('a LEFT-padded batch (masked pads, positions from the first real token) equals each sequence alone', () => {
    const p = sharpPolicy({ seed: 3, numLayers: 2, numHeads: 4, numKvHeads: 2 });
    const tok = p.tokenizer;
    const seqs = ['1+1=', 'what is 12+30?', 'x'].map((s) => tok.encode(s));
    const L = Math.max(...seqs.map((s) => s.length));
    const w = tf.tidy(() => prepareWeights(p.config, p.weights) as never);
    const batched = tf.tidy(
      () =>
        forward(p.config, w, {
          ids: seqs.map((s) => [...new Array<number>(L - s.length).fill(tok.padId), ...s]),
          positions: seqs.map((s) => Array.from({ length: L }, (_, j) => Math.max(0, j - (L - s.length)))),
          keyValid: seqs.map((s) => Array.from({ length: L }, (_, j) => j >= L - s.length)),
        }).logits.arraySync() as number[][][],
    );
    seqs.forEach((s, i) => {
      const alone = tf.tidy(() => (forward(p.config, w, { ids: [s] }).logits.arraySync() as number[][][])[0]!);
      expect(maxAbsDiff(batched[i]!.slice(L - s.length), alone)).toBeLessThan(1e-4);
    });
    // Without the mask the padded row would differ: the test can fail.
    const unmasked = tf.tidy(() => (forward(p.config, w, { ids: [[tok.padId, tok.padId, ...seqs[0]!]] }).logits.arraySync() as number[][][])[0]!);
    const alone0 = tf.tidy(() => (forward(p.config, w, { ids: [seqs[0]!] }).logits.arraySync() as number[][][])[0]!);
    expect(maxAbsDiff(unmasked.slice(2), alone0)).toBeGreaterThan(1e-2);
    p.dispose();
  });

  test('sequenceLogprobs of a ragged (right-padded) batch equals per-sequence values, zero past each end', () => {
    const p = sharpPolicy({ seed: 4 });
    const tok = p.tokenizer;
    const seqs = ['12+30=42', 'ab', 'what is 7*6? 42'].map((s) => tok.encode(s));
    const batch = tf.tidy(() => p.sequenceLogprobs(seqs).arraySync());
    expect(batch.length).toBe(3);
    expect(batch[0]!.length).toBe(Math.max(...seqs.map((s) => s.length)) - 1);
    seqs.forEach((s, i) => {
      const alone = tf.tidy(() => p.sequenceLogprobs([s]).arraySync()[0]!);
      expect(maxAbsDiff(batch[i]!.slice(0, s.length - 1), alone)).toBeLessThan(1e-4);
      expect(batch[i]!.slice(s.length - 1).every((v) => v === 0)).toBe(true);
      expect(alone.every((v) => v < 0)).toBe(true);
    });
    // log p(token[t+1] | ..t) equals log_softmax(logits[t])[token[t+1]]
    const s = seqs[2]!;
    const logits = tf.tidy(() => p.logits([s]).arraySync()[0]!);
    const direct = s.slice(1).map((next, t) => {
      const z = logits[t]!;
      const m = Math.max(...z);
      return z[next]! - m - Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
    });
    expect(maxAbsDiff(batch[2]!, direct)).toBeLessThan(1e-4);
    // temperature divides the logits
    const t2 = tf.tidy(() => p.sequenceLogprobs([s], { temperature: 2 }).arraySync()[0]!);
    const direct2 = s.slice(1).map((next, t) => {
      const z = logits[t]!.map((v) => v / 2);
      const m = Math.max(...z);
      return z[next]! - m - Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
    });
    expect(maxAbsDiff(t2, direct2)).toBeLessThan(1e-4);
    p.dispose();
  });

  test('lazily prepared layers (large models) give identical logits, and free their copies', () => {
    const p = sharpPolicy({ seed: 5 });
    const ids = [p.tokenizer.encode('what is 12+30?')];
    const run = (lazyLayers: boolean) =>
      tf.tidy(() => forward(p.config, prepareWeights(p.config, p.weights, { lazyLayers }), { ids }).logits.arraySync() as number[][][]);
    expect(run(true)).toEqual(run(false));
    const w = prepareWeights(p.config, p.weights, { lazyLayers: true });
    expect(w.layers).toEqual([]);
    const before = tf.memory().numTensors;
    tf.tidy(() => void forward(p.config, w, { ids }));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([w.lmHead, w.rot]);
    expect(preferLazyLayers(p.config)).toBe(false);
    expect(preferLazyLayers({ ...p.config, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, head_dim: 64, num_attention_heads: 14, num_key_value_heads: 2 })).toBe(true);
    p.dispose();
  });

  test('seeded init is deterministic and does not depend on the backend (host-side Rng)', () => {
    const cfg = tinyConfig({ vocabSize: 20, hiddenSize: 8, intermediateSize: 16, numLayers: 1, numHeads: 2 });
    const a = initWeights(cfg, 5);
    const b = initWeights(cfg, 5);
    const c = initWeights(cfg, 6);
    const e = a.get('model.embed_tokens.weight')!.data;
    expect(Array.from(e)).toEqual(Array.from(b.get('model.embed_tokens.weight')!.data));
    expect(Array.from(e)).not.toEqual(Array.from(c.get('model.embed_tokens.weight')!.data));
    const std = Math.sqrt(e.reduce((s, v) => s + v * v, 0) / e.length);
    expect(std).toBeGreaterThan(0.015);
    expect(std).toBeLessThan(0.025);
    expect(Array.from(a.get('model.norm.weight')!.data).every((v) => v === 1)).toBe(true);
    expect(Array.from(a.get('model.layers.0.self_attn.q_proj.bias')!.data).every((v) => v === 0)).toBe(true);
  });
});
