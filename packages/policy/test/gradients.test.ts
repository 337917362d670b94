/**
 * The model's hand-written gradients (matmul, embedding, RMSNorm, SwiGLU, RoPE, log-softmax pick) against
 * tfjs autodiff of a plain implementation of the same forward pass. Backend: cpu (where every tfjs
 * gradient kernel exists, including gather's).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, expect, test } from 'vitest';
import { fusedLogprobs, type ModelConfig, type Policy } from '../src/index.ts';
import { sharpPolicy, withBackend } from './helpers.ts';

beforeAll(() => withBackend('cpu'));

/** Plain-ops Qwen2 forward: log p(ids[:, t+1] | ids[:, ..t]) for equal-length sequences, [B, T-1]. */
function plainLogprobs(cfg: ModelConfig, W: Map<string, tf.Tensor>, ids: number[][]): tf.Tensor2D {
  const B = ids.length;
  const T = ids[0]!.length - 1;
  const { head_dim: hd, num_attention_heads: H, num_key_value_heads: Hkv, hidden_size: D, rms_norm_eps: eps } = cfg;
  const G = H / Hkv;
  const w = (n: string) => W.get(n)!;
  const norm = (x: tf.Tensor, g: tf.Tensor) => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), g);
  const lin = (x: tf.Tensor2D, n: string, bias: boolean) => {
    const y = tf.matMul(x, w(n + '.weight') as tf.Tensor2D, false, true);
    return bias ? tf.add(y, w(n + '.bias')) : y;
  };
  const ang = tf.tensor2d(
    Array.from({ length: T }, (_, t) => Array.from({ length: hd }, (_, j) => t * Math.pow(cfg.rope_theta, -(2 * (j % (hd / 2))) / hd))),
  );
  const [cos, sin] = [tf.cos(ang), tf.sin(ang)]; // [T, hd]
  const rope = (x: tf.Tensor) => {
    const [a, b] = tf.split(x, 2, -1);
    return tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(b!), a!], -1), sin)); // x [B, h, T, hd]
  };
  const mask = tf.tensor2d(Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => (j <= i ? 0 : -1e9))));
  const input = tf.tensor2d(ids.map((s) => s.slice(0, T)), [B, T], 'int32');
  let x = tf.reshape(tf.gather(w('model.embed_tokens.weight'), tf.reshape(input, [-1])), [B * T, D]) as tf.Tensor2D;
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const h = norm(x, w(p + 'input_layernorm.weight')) as tf.Tensor2D;
    const heads = (y: tf.Tensor, n: number) => tf.transpose(tf.reshape(y, [B, T, n, hd]), [0, 2, 1, 3]);
    const q = rope(heads(lin(h, p + 'self_attn.q_proj', cfg.attention_bias), H));
    const repeat = (y: tf.Tensor) => tf.reshape(tf.concat(new Array(G).fill(tf.expandDims(y, 2)), 2), [B, H, T, hd]); // repeat_kv
    const k = repeat(rope(heads(lin(h, p + 'self_attn.k_proj', cfg.attention_bias), Hkv)));
    const v = repeat(heads(lin(h, p + 'self_attn.v_proj', cfg.attention_bias), Hkv));
    const att = tf.softmax(tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(hd)), mask));
    const o = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [B * T, H * hd]) as tf.Tensor2D;
    x = tf.add(x, lin(o, p + 'self_attn.o_proj', false));
    const n = norm(x, w(p + 'post_attention_layernorm.weight')) as tf.Tensor2D;
    const g = lin(n, p + 'mlp.gate_proj', false);
    const act = tf.mul(tf.mul(g, tf.sigmoid(g)), lin(n, p + 'mlp.up_proj', false)) as tf.Tensor2D;
    x = tf.add(x, lin(act, p + 'mlp.down_proj', false));
  }
  const head = cfg.tie_word_embeddings ? 'model.embed_tokens' : 'lm_head';
  const logits = lin(norm(x, w('model.norm.weight')) as tf.Tensor2D, head, false);
  const targets = tf.tensor1d(ids.flatMap((s) => s.slice(1)), 'int32');
  const picked = tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(targets, cfg.vocab_size)), -1);
  return tf.reshape(picked, [B, T]) as tf.Tensor2D;
}

function compareGradients(p: Policy, seqs: number[][]): void {
  expect(new Set(seqs.map((s) => s.length)).size).toBe(1);
  const vars = p.variables();
  const B = seqs.length;
  const T = seqs[0]!.length - 1;
  // a loss that weights every position differently, so every gradient path matters
  const coef = tf.tensor2d(Array.from({ length: B * T }, (_, i) => Math.sin(i + 1)), [B, T]);
  const ours = tf.variableGrads(() => tf.sum(tf.mul(p.sequenceLogprobs(seqs), coef)) as tf.Scalar, vars);
  const plain = tf.variableGrads(() => tf.sum(tf.mul(plainLogprobs(p.config, p.weights as Map<string, tf.Tensor>, seqs), coef)) as tf.Scalar, vars);
  expect(Math.abs(ours.value.dataSync()[0]! - plain.value.dataSync()[0]!)).toBeLessThan(1e-3);
  for (const [name, v] of p.namedVariables()) {
    const a = ours.grads[v.name]!;
    const b = plain.grads[v.name]!;
    const scale = tf.tidy(() => tf.max(tf.abs(b)).dataSync()[0]!);
    const err = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
    expect(scale, name).toBeGreaterThan(1e-6);
    expect(err / scale, name).toBeLessThan(1e-3);
  }
  tf.dispose([coef, ours.value, plain.value, ...Object.values(ours.grads), ...Object.values(plain.grads)]);
}

test('gradients equal autodiff of the plain formulas: GQA, biases, tied embeddings', () => {
  const p = sharpPolicy({ seed: 21, numLayers: 2, numHeads: 4, numKvHeads: 2, attentionBias: true, tieWordEmbeddings: true });
  const seqs = ['what is 12+30? 42', '7*6=42, 9-1=8 ok!'].map((s) => p.tokenizer.encode(s));
  compareGradients(p, seqs);
  p.dispose();
});

test('gradients equal autodiff of the plain formulas: MHA, no biases, untied lm_head, long enough for the batched-matmul path', () => {
  const p = sharpPolicy({ seed: 22, numLayers: 1, numHeads: 2, numKvHeads: 2, attentionBias: false, tieWordEmbeddings: false });
  const seqs = ['a'.repeat(3) + 'what is 12+30? 42', 'b'.repeat(3) + '7*6=42, 9-1=8 ok!'].map((s) => p.tokenizer.encode(s));
  compareGradients(p, seqs);
  p.dispose();
});

test('short sequences (decode-style transposeB scores) also differentiate correctly', () => {
  const p = sharpPolicy({ seed: 23, numLayers: 1, numHeads: 2, numKvHeads: 2 }); // G * T <= 8 query rows
  compareGradients(p, [p.tokenizer.encode('1+2=3'), p.tokenizer.encode('4*5=2')]);
  p.dispose();
});

test('fused lm_head + log-softmax + pick: blocks of rows give the values and gradients of the plain formula', () => {
  const [N, D, V] = [10, 6, 23];
  const h = tf.randomNormal([N, D], 0, 1, 'float32', 1) as tf.Tensor2D;
  const W = tf.randomNormal([D, V], 0, 1, 'float32', 2) as tf.Tensor2D;
  const targets = Int32Array.from({ length: N }, (_, i) => (i % 4 === 3 ? -1 : (i * 7) % V)); // -1: no target
  const coef = tf.linspace(0.5, 2, N);
  const T = 0.7;
  const plain = (hh: tf.Tensor2D, ww: tf.Tensor2D) => {
    const ls = tf.logSoftmax(tf.div(tf.matMul(hh, ww), T));
    const oh = tf.tensor2d(Array.from(targets, (t) => Array.from({ length: V }, (_, v) => (v === t ? 1 : 0))));
    return tf.sum(tf.mul(ls, oh), -1);
  };
  const grads = (f: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor) => {
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(f(hv, wv), coef)) as tf.Scalar, [hv, wv]);
    return [value.dataSync()[0]!, Array.from(grads[hv.name]!.dataSync()), Array.from(grads[wv.name]!.dataSync())] as const;
  };
  const hv = tf.variable(h);
  const wv = tf.variable(W);
  const want = grads(plain);
  for (const blockFloats of [V * N, V * 3, 1]) {
    const got = grads((a, b) => fusedLogprobs(a, b, targets, T, blockFloats));
    expect(Math.abs(got[0] - want[0])).toBeLessThan(1e-4);
    expect(Math.max(...got[1].map((g, i) => Math.abs(g - want[1][i]!)))).toBeLessThan(1e-4);
    expect(Math.max(...got[2].map((g, i) => Math.abs(g - want[2][i]!)))).toBeLessThan(1e-4);
  }
  const values = fusedLogprobs(h, W, targets, T, V * 3).arraySync();
  expect(values.filter((_, i) => i % 4 === 3).every((v) => v === 0)).toBe(true);
  tf.dispose([h, W, hv, wv, coef]);
});
