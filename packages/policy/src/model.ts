/**
 * The Qwen2 / Llama decoder-only transformer, in one file (read it like nanoGPT's model.py).
 *
 *   x = embed_tokens[ids]
 *   for each layer:
 *     x = x + o_proj(attention(rope(q_proj(rms(x))), rope(k_proj(rms(x))), v_proj(rms(x))))   (causal, GQA)
 *     x = x + down_proj(silu(gate_proj(rms(x))) * up_proj(rms(x)))                             (SwiGLU)
 *   logits = lm_head(rms(x))                       (lm_head = embed_tokens when tie_word_embeddings)
 *
 * Weights are named and laid out exactly as in a Hugging Face checkpoint (Linear weights are [out, in]).
 * `prepareWeights` turns them, inside the caller's tidy/gradient scope, into the layout the forward pass
 * uses (Linear weights transposed to [in, out]), so gradients flow back to the HF-layout variables.
 *
 * Shapes: B batch, T new tokens, S cached tokens, K = S + T keys, D hidden, H heads, Hkv key/value heads,
 * G = H / Hkv query heads per kv head, hd head dim, I intermediate size, V vocab.
 *
 * Backend notes (correct on every backend; these choices make wasm fast):
 *  - every matmul goes through `matmul` / `matmulNT`, whose gradients use explicit transposes or a @ b^T
 *    (tfjs' own matMul gradient uses the transposeA/B flags, which leave XNNPACK for a ~10x slower loop);
 *  - on wasm, matmuls run on SIMD kernels (kernels/matmul.ts, a @ b and a @ b^T): tfjs-wasm computes batched
 *    matmuls (attention's q k^T and probs v, rank 4) with a scalar loop, 10-20x slower; with a @ b^T neither the
 *    scores nor the cached keys are ever transposed;
 *  - the embedding lookup is a gather whose gradient is a scatterND (wasm has no gather gradient, and a
 *    one-hot matmul would need a [V, N] matrix: too large for a 151k vocabulary);
 *  - RMSNorm, SwiGLU and RoPE have hand-written gradients, so the tape keeps fewer (copied) tensors; on wasm,
 *    RMSNorm's and RoPE's forward run as one fused kernel each (kernels/fused.ts), and the 1/sqrt(hd) score scale
 *    is applied inside q's RoPE;
 *  - data movement on wasm (embedding rows, KV-cache concat and row drops, segment slices) is block copies
 *    (kernels/copy.ts), and [B, T, H, hd] <-> [B, H, T, hd] is a reshape when T = 1 (decoding).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@empo/core';
import type { ModelConfig } from './config.ts';
import { concat, gatherRows, slice, useTransposeKernel } from './kernels/copy.ts';
import { useElementwiseKernels } from './kernels/elementwise.ts';
import { fusedForwardAvailable, rmsNormForward, ropeForward } from './kernels/fused.ts';
import { batchMatMul, batchMatMulNT, batchMatMulTN, simdMatMulApplies } from './kernels/matmul.ts';
import { recording, wasmKernelsActive } from './kernels/runtime.ts';
import type { HostTensor } from './safetensors.ts';

// ---------------------------------------------------------------------------------------------------
// Weight names (Hugging Face), shapes and initialisation

export interface WeightSpec {
  name: string;
  shape: number[];
  init: 'normal' | 'ones' | 'zeros';
}

/** Every weight of the model, in a stable order (the order of `Policy.variables()`). */
export function weightSpecs(cfg: ModelConfig): WeightSpec[] {
  const { hidden_size: D, intermediate_size: I, vocab_size: V, head_dim: hd } = cfg;
  const H = cfg.num_attention_heads;
  const Hkv = cfg.num_key_value_heads;
  const specs: WeightSpec[] = [{ name: 'model.embed_tokens.weight', shape: [V, D], init: 'normal' }];
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    specs.push({ name: p + 'input_layernorm.weight', shape: [D], init: 'ones' });
    for (const [proj, out] of [['q', H * hd], ['k', Hkv * hd], ['v', Hkv * hd]] as const) {
      specs.push({ name: `${p}self_attn.${proj}_proj.weight`, shape: [out, D], init: 'normal' });
      if (cfg.attention_bias) specs.push({ name: `${p}self_attn.${proj}_proj.bias`, shape: [out], init: 'zeros' });
    }
    specs.push({ name: p + 'self_attn.o_proj.weight', shape: [D, H * hd], init: 'normal' });
    specs.push({ name: p + 'post_attention_layernorm.weight', shape: [D], init: 'ones' });
    specs.push({ name: p + 'mlp.gate_proj.weight', shape: [I, D], init: 'normal' });
    specs.push({ name: p + 'mlp.up_proj.weight', shape: [I, D], init: 'normal' });
    specs.push({ name: p + 'mlp.down_proj.weight', shape: [D, I], init: 'normal' });
  }
  specs.push({ name: 'model.norm.weight', shape: [D], init: 'ones' });
  if (!cfg.tie_word_embeddings) specs.push({ name: 'lm_head.weight', shape: [V, D], init: 'normal' });
  return specs;
}

/**
 * Seeded initialisation on the host (identical on every backend): normal(0, 0.02) matrices, norms at 1,
 * zero biases. Each tensor draws from its own stream `Rng.derive(seed, name)`.
 */
export function initWeights(cfg: ModelConfig, seed: number, std = 0.02): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const s of weightSpecs(cfg)) {
    const data = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    if (s.init === 'ones') data.fill(1);
    else if (s.init === 'normal') {
      const rng = Rng.derive(seed, s.name);
      for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
    }
    out.set(s.name, { shape: s.shape, data });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Differentiable building blocks

/** Swap the last two axes. */
function transposeLast2(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
  return tf.transpose(x, perm);
}

/** a @ b; on wasm, a SIMD kernel (kernels/matmul.ts) that also handles batched products fast. */
const mm = batchMatMul;

/** a @ b^T; unbatched products transpose b explicitly (tfjs-wasm's transposeB flag leaves XNNPACK). */
function mmNT<R extends tf.Rank>(a: tf.Tensor<R>, b: tf.Tensor<R>): tf.Tensor<R> {
  return a.rank > 2 ? batchMatMulNT(a, b) : mm(a, transposeLast2(b) as tf.Tensor<R>);
}

type Product = <R extends tf.Rank>(a: tf.Tensor<R>, b: tf.Tensor<R>) => tf.Tensor<R>;

/**
 * A product of two tensors with a hand-written gradient (the tape keeps the two operands only): `forward`
 * directly when no tape records, else through tf.customGrad with `grads(dy, a, b) = [dA, dB]`.
 */
function product(forward: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, grads: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor[]): Product {
  const withGrad = tf.customGrad((a, b, save) => {
    (save as tf.GradSaveFunc)([a as tf.Tensor, b as tf.Tensor]);
    return { value: forward(a as tf.Tensor, b as tf.Tensor), gradFunc: (dy: tf.Tensor, [A, B]: tf.Tensor[]) => grads(dy, A!, B!) };
  });
  return ((a: tf.Tensor, b: tf.Tensor) => (recording() ? withGrad(a, b) : forward(a, b))) as Product;
}

/** a @ b (rank 2..4, equal batch dims). Gradient: dA = dY @ B^T, dB = A^T @ dY (kernels that read A^T, B^T in place). */
export const matmul = product(mm, (dy, A, B) => [mmNT(dy, B), batchMatMulTN(A, dy)]);

/**
 * Whether x @ W^T for x [rows, in] and W [out, in] is cheaper as (W @ x^T)^T: transposing the activations (rows x
 * (in + out) values moved) costs less than transposing the weight (in x out), as in decoding, where rows is the
 * batch. The weight is then also read once, as it lies, instead of once per 4 rows of x.
 */
export function weightStationary(rows: number, inDim: number, outDim: number): boolean {
  return rows * (inDim + outDim) < inDim * outDim;
}

/**
 * The forward of `linear`: x @ W^T, or (W @ x^T)^T where weightStationary says so and the SIMD kernel computes it
 * (each element is the same k-ordered sum of the same products, so the same bits either way).
 */
function linearForward(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
  return tf.tidy(() =>
    simdMatMulApplies(x, w) && weightStationary(x.shape[0]!, x.shape[1]!, w.shape[0]!)
      ? tf.transpose(mm(w, tf.transpose(x))) // [out, in] @ [in, rows] -> [out, rows] -> [rows, out]
      : mm(x, tf.transpose(w)),
  );
}

/**
 * x @ W^T for a Linear weight W [out, in] as Hugging Face stores it: [N, in] -> [N, out]. Gradient: dx = dy @ W
 * and dW = dy^T @ x, both without a transpose (the kernels read W and dy as they lie). The forward transposes W
 * once, or x when x is the smaller (linearForward); a transposed copy prepared up front and used through
 * `matmul` instead costs two more transposes in the backward (dx reads W^T transposed back, and the copy's own
 * gradient), so single forwards (training, scoring) use this, and decoding, which reuses the copy every step,
 * the other, unless the model is too large for a second copy (lazy layers: see prepareWeights).
 */
export const linear = product(linearForward, (dy, X, W) => [mm(dy, W), batchMatMulTN(dy, X)]) as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

/** a @ b^T (rank 3..4, equal batch dims): attention scores q k^T. Gradient: dA = dY @ B, dB = dY^T @ A. */
const matmulNT = product(mmNT, (dy, A, B) => [mm(dy, B), batchMatMulTN(dy, A)]);

/**
 * table[ids] : [N, D]. Forward is a row gather; the gradient scatters dY into the rows of ids (scatterND sums
 * duplicate ids), so no [V, N] one-hot is built (wasm has no gather gradient; a one-hot of a 151k vocab
 * would not fit).
 */
function embedding(table: tf.Tensor2D, ids: Int32Array): tf.Tensor2D {
  if (!recording()) return gatherRows(table, ids);
  const lookup = tf.customGrad((t, save) => {
    (save as tf.GradSaveFunc)([tf.tensor1d(ids, 'int32')]); // kept for the backward pass
    return {
      value: gatherRows(t as tf.Tensor2D, ids),
      gradFunc: (dy: tf.Tensor, [savedIds]: tf.Tensor[]) =>
        tf.scatterND(tf.reshape(savedIds!, [-1, 1]), dy, table.shape), // [V, D]
    };
  });
  return lookup(table) as tf.Tensor2D;
}

/** RMSNorm over the last axis, in float32: y = x / sqrt(mean(x^2) + eps) * w. x: [N, D], w: [D]. */
function rmsNorm(x: tf.Tensor2D, w: tf.Tensor1D, eps: number): tf.Tensor2D {
  const invRms = (X: tf.Tensor2D) => tf.rsqrt(tf.add(tf.mean(tf.square(X), -1, true), eps)); // [N, 1]
  // Hand-written gradient: the tape keeps x and w only, not every intermediate.
  const forwardValue = (X: tf.Tensor2D, W: tf.Tensor1D) => (fusedForwardAvailable(X, W) ? rmsNormForward(X, W, eps) : tf.mul(tf.mul(X, invRms(X)), W));
  if (!recording()) return forwardValue(x, w) as tf.Tensor2D; // intermediates go with the caller's scope
  const norm = tf.customGrad((xIn, wIn, save) => {
    const [X, W] = [xIn as tf.Tensor2D, wIn as tf.Tensor1D];
    (save as tf.GradSaveFunc)([X, W]);
    return {
      value: forwardValue(X, W),
      gradFunc: (dy: tf.Tensor, [X, W]: tf.Tensor[]) => {
        // xhat = x r, g = dy w:  dx = r (g - xhat mean(g xhat)),  dw = sum_n dy xhat
        const r = invRms(X as tf.Tensor2D);
        const xhat = tf.mul(X!, r);
        const g = tf.mul(dy, W!);
        return [tf.mul(r, tf.sub(g, tf.mul(xhat, tf.mean(tf.mul(g, xhat), -1, true)))), tf.sum(tf.mul(dy, xhat), 0)];
      },
    };
  });
  return norm(x, w) as tf.Tensor2D;
}

/** silu(gate) * up, elementwise: [N, I]. */
function swiglu(gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D {
  if (!recording()) return tf.mul(tf.mul(gate, tf.sigmoid(gate)), up);
  // Hand-written gradient: the tape keeps gate and up only.
  const f = tf.customGrad((gIn, uIn, save) => {
    const [g, u] = [gIn as tf.Tensor2D, uIn as tf.Tensor2D];
    (save as tf.GradSaveFunc)([g, u]);
    return {
      value: tf.mul(tf.mul(g, tf.sigmoid(g)), u),
      gradFunc: (dy: tf.Tensor, [g, u]: tf.Tensor[]) => {
        // silu'(g) = s (1 + g (1 - s)), s = sigmoid(g)
        const s = tf.sigmoid(g!);
        return [tf.mul(tf.mul(dy, u!), tf.mul(s, tf.add(1, tf.mul(g!, tf.sub(1, s))))), tf.mul(dy, tf.mul(g!, s))];
      },
    };
  });
  return f(gate, up) as tf.Tensor2D;
}

// ---------------------------------------------------------------------------------------------------
// Rotary position embeddings, Hugging Face "rotate_half" layout:
//   rope(x) = x * cos + rotate_half(x) * sin,   rotate_half([x1, x2]) = [-x2, x1]   (x1, x2: halves of hd)
//   cos = [cos(p * f), cos(p * f)], sin likewise, f_j = 1 / theta^(2j / hd)   (j < hd/2)

/**
 * inv_freq as HF computes it (float32), with the config's rope scaling:
 *  - default: f_j = 1 / theta^(2j / hd)
 *  - linear:  f_j / factor
 *  - llama3:  wavelengths 2 pi / f_j above original_max / low_freq_factor are divided by factor, those below
 *             original_max / high_freq_factor are kept, and those in between interpolated smoothly.
 */
export function invFreq(cfg: ModelConfig): Float32Array {
  const hd = cfg.head_dim;
  const f = new Float32Array(hd / 2);
  for (let j = 0; j < hd / 2; j++) f[j] = Math.fround(1 / Math.fround(Math.pow(cfg.rope_theta, Math.fround((2 * j) / hd))));
  const rs = cfg.rope_scaling;
  if (rs?.rope_type === 'linear') {
    for (let j = 0; j < f.length; j++) f[j] = f[j]! / rs.factor;
  } else if (rs?.rope_type === 'llama3') {
    const lowWavelen = rs.original_max_position_embeddings / rs.low_freq_factor;
    const highWavelen = rs.original_max_position_embeddings / rs.high_freq_factor;
    for (let j = 0; j < f.length; j++) {
      const inv = f[j]!;
      const wavelen = (2 * Math.PI) / inv;
      if (wavelen > lowWavelen) f[j] = inv / rs.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (rs.original_max_position_embeddings / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        f[j] = (1 - smooth) * (inv / rs.factor) + smooth * inv;
      }
    }
  }
  return f;
}

/** cos and sin for positions [P][T] (P = B, or 1 to broadcast) as [P, T, 1, hd]. */
function ropeTables(cfg: ModelConfig, positions: number[][]): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  const hd = cfg.head_dim;
  const inv = invFreq(cfg);
  const P = positions.length;
  const T = positions[0]!.length;
  const cos = new Float32Array(P * T * hd);
  const sin = new Float32Array(P * T * hd);
  for (let b = 0; b < P; b++) for (let t = 0; t < T; t++) writeRopeRow(inv, positions[b]![t]!, cos, sin, (b * T + t) * hd);
  return { cos: tf.tensor4d(cos, [P, T, 1, hd]), sin: tf.tensor4d(sin, [P, T, 1, hd]) };
}

/** cos and sin of rotary position `pos` (hd = 2 inv.length values each) into cos / sin from `offset` on. */
export function writeRopeRow(inv: Float32Array, pos: number, cos: Float32Array, sin: Float32Array, offset: number): void {
  const half = inv.length;
  for (let j = 0; j < half; j++) {
    const a = Math.fround(pos * inv[j]!);
    cos[offset + j] = cos[offset + j + half] = Math.cos(a);
    sin[offset + j] = sin[offset + j + half] = Math.sin(a);
  }
}

/** The [hd, hd] matrix R with x @ R = rotate_half(x) (one matmul instead of slice/neg/concat). */
function rotateHalfMatrix(hd: number): tf.Tensor2D {
  const r = new Float32Array(hd * hd);
  for (let j = 0; j < hd / 2; j++) {
    r[(j + hd / 2) * hd + j] = -1; // out[j] = -x[j + hd/2]
    r[j * hd + j + hd / 2] = 1; // out[j + hd/2] = x[j]
  }
  return tf.tensor2d(r, [hd, hd]);
}

/** x @ R over the last axis (= rotate_half(x)). */
function rotateHalf(x: tf.Tensor, rot: tf.Tensor2D): tf.Tensor {
  const hd = rot.shape[0];
  return tf.reshape(mm(tf.reshape(x, [-1, hd]) as tf.Tensor2D, rot), x.shape);
}

/** rope(x) * scale = (x * cos + rotate_half(x) * sin) * scale.  x: [B, T, nh, hd]; cos, sin: [B|1, T, 1, hd]. */
function applyRope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D, rot: tf.Tensor2D, scale = 1): tf.Tensor4D {
  // Linear in x, so the gradient is the transposed map: dx = d * cos + rotate_half^T(d * sin), R^T = -R, d = dy * scale.
  const forwardValue = (X: tf.Tensor4D) => {
    const fused = fusedForwardAvailable(X, cos, sin) && X.shape[3] % 8 === 0;
    const y = fused ? ropeForward(X, cos, sin, scale) : tf.add(tf.mul(X, cos), tf.mul(rotateHalf(X, rot), sin));
    return fused || scale === 1 ? y : tf.mul(y, scale);
  };
  if (!recording()) return forwardValue(x) as tf.Tensor4D;
  const rope = tf.customGrad((xIn, save) => {
    (save as tf.GradSaveFunc)([cos, sin, rot]);
    return {
      value: forwardValue(xIn as tf.Tensor4D),
      gradFunc: (dy: tf.Tensor, [c, s, r]: tf.Tensor[]) => {
        const d = scale === 1 ? dy : tf.mul(dy, scale);
        return tf.sub(tf.mul(d, c!), rotateHalf(tf.mul(d, s!), r as tf.Tensor2D));
      },
    };
  });
  return rope(x) as tf.Tensor4D;
}

/** [B, T, heads, hd] <-> [B, heads, T, hd]: a transpose, or a reshape when T or heads is 1 (the same memory order). */
function swapAxes12(x: tf.Tensor4D): tf.Tensor4D {
  const [a, b, c, d] = x.shape;
  return b === 1 || c === 1 ? tf.reshape(x, [a, c, b, d]) : tf.transpose(x, [0, 2, 1, 3]);
}

// ---------------------------------------------------------------------------------------------------
// Forward pass

/**
 * Per-layer weights. Linear weights are either transposed to [in, out] (`outIn` false: decoding's layout, used
 * through `matmul`) or as Hugging Face stores them, [out, in] (`outIn` true, used through `linear`); the shapes
 * below are the [in, out] ones.
 */
export interface LayerWeights {
  outIn: boolean;
  inputNorm: tf.Tensor1D; // [D]
  wq: tf.Tensor2D; // [D, H hd]
  wk: tf.Tensor2D; // [D, Hkv hd]
  wv: tf.Tensor2D; // [D, Hkv hd]
  bq: tf.Tensor1D | null; // [H hd]
  bk: tf.Tensor1D | null; // [Hkv hd]
  bv: tf.Tensor1D | null; // [Hkv hd]
  wo: tf.Tensor2D; // [H hd, D]
  postNorm: tf.Tensor1D; // [D]
  wGate: tf.Tensor2D; // [D, I]
  wUp: tf.Tensor2D; // [D, I]
  wDown: tf.Tensor2D; // [I, D]
}

export interface Weights {
  embed: tf.Tensor2D; // [V, D]
  /** Per layer; empty when `layer` prepares them on demand. */
  layers: LayerWeights[];
  /**
   * Lazy preparation (see prepareWeights' `lazyLayers`): layer i's forward-layout weights, created inside
   * the caller's scope (the forward pass's per-layer tidy frees them again when no gradient tape is active).
   */
  layer?: (i: number) => LayerWeights;
  norm: tf.Tensor1D; // [D]
  lmHead: tf.Tensor2D; // [D, V]                = lm_head^T (or embed_tokens^T when tied)
  rot: tf.Tensor2D; // [hd, hd] rotate_half as a matrix (constant)
}

/**
 * HF-named, HF-layout weights -> the forward pass's weights: Linear weights as stored (used through `linear`),
 * or with `transposed` copied once to [in, out] (for many forwards over the same weights: decoding). The
 * lm_head is always transposed. Differentiable: call it inside the tidy / gradient scope of the computation so
 * gradients reach the variables.
 */
export function prepareWeights(cfg: ModelConfig, named: ReadonlyMap<string, tf.Tensor>, opts: { lazyLayers?: boolean; transposed?: boolean } = {}): Weights {
  if (wasmKernelsActive('copy')) useTransposeKernel();
  const get = <R extends tf.Rank>(name: string): tf.Tensor<R> => {
    const t = named.get(name);
    if (!t) throw new Error(`missing weight ${name}`);
    return t as tf.Tensor<R>;
  };
  // Separate (unfused) projections: on wasm, slicing a fused q|k|v or gate|up output costs more than it saves.
  // transposed: [out, in] -> [in, out] once, for callers that run many forwards over the same weights (decoding)
  const transposed = opts.transposed ?? false;
  const linearWeight = (name: string) => (transposed ? tf.transpose(get<tf.Rank.R2>(name + '.weight')) : get<tf.Rank.R2>(name + '.weight'));
  const bias = (name: string) => (cfg.attention_bias ? get<tf.Rank.R1>(name + '.bias') : null);
  const layer = (i: number): LayerWeights => {
    const p = `model.layers.${i}.`;
    return {
      outIn: !transposed,
      inputNorm: get(p + 'input_layernorm.weight'),
      wq: linearWeight(p + 'self_attn.q_proj'),
      wk: linearWeight(p + 'self_attn.k_proj'),
      wv: linearWeight(p + 'self_attn.v_proj'),
      bq: bias(p + 'self_attn.q_proj'),
      bk: bias(p + 'self_attn.k_proj'),
      bv: bias(p + 'self_attn.v_proj'),
      wo: linearWeight(p + 'self_attn.o_proj'),
      postNorm: get(p + 'post_attention_layernorm.weight'),
      wGate: linearWeight(p + 'mlp.gate_proj'),
      wUp: linearWeight(p + 'mlp.up_proj'),
      wDown: linearWeight(p + 'mlp.down_proj'),
    };
  };
  const embed = get<tf.Rank.R2>('model.embed_tokens.weight');
  return {
    embed,
    layers: opts.lazyLayers ? [] : Array.from({ length: cfg.num_hidden_layers }, (_, i) => layer(i)),
    ...(opts.lazyLayers ? { layer } : {}),
    norm: get('model.norm.weight'),
    lmHead: tf.transpose(cfg.tie_word_embeddings ? embed : get<tf.Rank.R2>('lm_head.weight')),
    rot: rotateHalfMatrix(cfg.head_dim),
  };
}

/**
 * Whether inference should prepare layer weights on demand (prepareWeights' `lazyLayers`): when a transposed
 * copy of every layer would take more than `budgetBytes` (default 256 MB). Large models then keep no second copy
 * of the whole model (the wasm heap is limited to 4 GB): decoding uses the weights as stored, through `linear`,
 * which transposes the few rows of activations instead of the weights (weightStationary).
 */
export function preferLazyLayers(cfg: ModelConfig, budgetBytes = 256 * 2 ** 20): boolean {
  const { hidden_size: D, intermediate_size: I, head_dim: hd } = cfg;
  const perLayer = D * hd * (2 * cfg.num_attention_heads + 2 * cfg.num_key_value_heads) + 3 * D * I;
  return perLayer * cfg.num_hidden_layers * 4 > budgetBytes;
}

/**
 * Whether decoding (`generate`) should use the Linear weights as stored, through `linear`, rather than a copy
 * transposed once per call: when the model is too large for that copy (preferLazyLayers), or when its MLP
 * matrices exceed `matrixBytes` (default 2 MB). The copy's product re-reads each weight for every 4 rows of a
 * step (kernels/matmul.ts), which costs once the weights no longer stay in the CPU's cache; `linear` reads each
 * stored weight once and transposes the step's few rows of activations instead (weightStationary). Measured
 * per decoding step on wasm (BENCHMARKS.md): 0.54-0.74x the time at hidden 512-768, 0.75-0.96x at 384, about the
 * same at 256 (1 MB matrices), 1.2-1.8x at the tiny default's 128, whose copy is kept. The same bits either way.
 */
export function decodeFromStoredWeights(cfg: ModelConfig, matrixBytes = 2 * 2 ** 20): boolean {
  return preferLazyLayers(cfg) || cfg.hidden_size * cfg.intermediate_size * 4 > matrixBytes;
}

/**
 * Keys and values of tokens already seen, per layer as a list of segments along the sequence axis
 * (k[layer][segment]: [B, Hkv, S_seg, hd], v likewise). Attention runs over the segments in order, so a
 * decoder can append a step's keys to a small recent segment instead of copying the whole cache each step.
 */
export interface KVCache {
  k: tf.Tensor4D[][];
  v: tf.Tensor4D[][];
}

/** Keys and values of the tokens of one forward call, per layer: [B, Hkv, T, hd]. */
export interface NewKV {
  k: tf.Tensor4D[];
  v: tf.Tensor4D[];
}

/** Number of cached positions. */
export function cacheLength(cache: KVCache): number {
  return (cache.v[0] ?? []).reduce((n, t) => n + t.shape[2], 0);
}

export interface ForwardInput {
  /** Token ids [B][T] (rectangular). */
  ids: number[][];
  /** Rotary positions [B][T]; default S + t for every row. */
  positions?: number[][];
  /** Which keys are real tokens, [B][S + T]; default all. Keys after a query are always masked (causal). */
  keyValid?: boolean[][];
}

export interface ForwardOptions {
  /** Keys/values of the S tokens before `ids` (decoding). */
  cache?: KVCache;
  /** Only compute the logits of the last position: [B, V] instead of [B, T, V]. */
  lastOnly?: boolean;
  /**
   * Return the final normed hidden states ([B*T, D], or [B, D] with lastOnly) as `hidden` instead of
   * computing logits (`logits` is then null): for callers that apply lm_head in chunks.
   */
  hiddenOnly?: boolean;
}

const MASKED = -1e9;

/**
 * Additive attention bias [B|1, 1, G*T, K] (rows in the order of the queries: G query heads of a kv head, then T):
 * 0 where query t may attend key k, -1e9 elsewhere.
 */
function attentionBias(B: number, G: number, T: number, S: number, keyValid?: boolean[][]): tf.Tensor4D {
  const K = S + T;
  const P = keyValid ? B : 1;
  const bias = new Float32Array(P * T * K);
  for (let b = 0; b < P; b++) {
    const valid = keyValid?.[b];
    if (valid && valid.length !== K) throw new Error(`keyValid[${b}] has ${valid.length} entries, expected ${K}`);
    for (let t = 0; t < T; t++) writeBiasRow(bias, (b * T + t) * K, K, S + t, valid);
  }
  if (G === 1) return tf.tensor4d(bias, [P, 1, T, K]);
  const tiled = new Float32Array(P * G * T * K); // the same [T, K] block for each of the G query heads
  for (let b = 0; b < P; b++) for (let g = 0; g < G; g++) tiled.set(bias.subarray(b * T * K, (b + 1) * T * K), (b * G + g) * T * K);
  return tf.tensor4d(tiled, [P, 1, G * T, K]);
}

/**
 * The attention bias of the query at position `query` over K keys into out[offset .. offset + K): 0 where it may
 * attend key k (k <= query, and valid[k] when given), -1e9 elsewhere.
 */
export function writeBiasRow(out: Float32Array, offset: number, K: number, query: number, valid?: readonly boolean[]): void {
  let any = false;
  for (let k = 0; k < K; k++) {
    const ok = k <= query && (!valid || valid[k]!);
    out[offset + k] = ok ? 0 : MASKED;
    any ||= ok;
  }
  if (!any) out[offset + query] = 0; // a padding query with no real key: let it see itself (output unused)
}

/** A layer's Linear map of h [N, in] -> [N, out], whichever layout its weights are in. */
function linearMap(L: LayerWeights, h: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  return L.outIn ? linear(h, w) : matmul(h, w);
}

/**
 * Causal self-attention of one layer. h: [B*T, D] (normed); past: cached key/value segments.
 * Returns the output [B*T, D] and the keys/values of these T tokens ([B, Hkv, T, hd]).
 */
function attention(
  cfg: ModelConfig,
  L: LayerWeights,
  h: tf.Tensor2D,
  B: number,
  T: number,
  rope: { cos: tf.Tensor4D; sin: tf.Tensor4D; rot: tf.Tensor2D },
  bias: tf.Tensor4D,
  past: { k: tf.Tensor4D[]; v: tf.Tensor4D[] },
): { out: tf.Tensor2D; k: tf.Tensor4D; v: tf.Tensor4D } {
  const H = cfg.num_attention_heads;
  const Hkv = cfg.num_key_value_heads;
  const G = H / Hkv;
  const hd = cfg.head_dim;
  const project = (w: tf.Tensor2D, b: tf.Tensor1D | null, heads: number) => {
    const y = linearMap(L, h, w); // [B*T, heads hd]
    return tf.reshape(b ? tf.add(y, b) : y, [B, T, heads, hd]) as tf.Tensor4D; // [B, T, heads, hd]
  };
  const q0 = project(L.wq, L.bq, H); // [B, T, H, hd]
  const k0 = project(L.wk, L.bk, Hkv); // [B, T, Hkv, hd]
  const v0 = project(L.wv, L.bv, Hkv); // [B, T, Hkv, hd]
  const q1 = applyRope(q0, rope.cos, rope.sin, rope.rot, 1 / Math.sqrt(hd)); // scaled for the scores
  const k1 = applyRope(k0, rope.cos, rope.sin, rope.rot);

  // GQA without repeating keys: query head h = kv * G + g, so [B, H, T, hd] -> [B, Hkv, G*T, hd]
  const q = tf.reshape(T === 1 ? q1 : swapAxes12(q1), [B, Hkv, G * T, hd]) as tf.Tensor4D; // T = 1: the same memory order
  const k = swapAxes12(k1); // [B, Hkv, T, hd]
  const v = swapAxes12(v0); // [B, Hkv, T, hd]
  const keys = [...past.k, k];
  const values = [...past.v, v];

  const parts = keys.map((ks) => matmulNT(q, ks)); // q k^T per segment: each [B, Hkv, G*T, S_seg]
  const K = parts.reduce((n, t) => n + t.shape[3], 0);
  const scores = concat(parts, 3); // [B, Hkv, G*T, K]
  const probs = tf.softmax(tf.add(scores, bias)) as tf.Tensor4D; // [B, Hkv, G*T, K]
  let y: tf.Tensor4D | null = null; // [B, Hkv, G*T, hd] = sum over segments of probs_seg @ v_seg
  let offset = 0;
  for (const vs of values) {
    const n = vs.shape[2];
    const p = values.length === 1 ? probs : slice(probs, 3, offset, n);
    const part = matmul(p, vs);
    y = y ? (tf.add(y, part) as tf.Tensor4D) : part;
    offset += n;
  }
  const merged = (T === 1 ? tf.reshape(y!, [B, H * hd]) : tf.reshape(swapAxes12(tf.reshape(y!, [B, H, T, hd]) as tf.Tensor4D), [B * T, H * hd])) as tf.Tensor2D; // [B*T, H hd]
  return { out: linearMap(L, merged, L.wo), k, v }; // out: [B*T, D]
}

/** SwiGLU MLP. h: [N, D] -> [N, D]. */
function mlp(L: LayerWeights, h: tf.Tensor2D): tf.Tensor2D {
  const act = swiglu(linearMap(L, h, L.wGate), linearMap(L, h, L.wUp)); // silu(gate) * up: [N, I]
  return linearMap(L, act, L.wDown); // [N, D]
}

/** tf.tidy for functions returning plain objects of tensors (interfaces lack TensorContainer's index signature). */
export function tidy<T>(f: () => T): T {
  return tf.tidy(f as unknown as () => tf.TensorContainer) as unknown as T;
}

/**
 * Run the model on ids [B][T] (optionally after S cached tokens). Returns logits ([B, T, V], or [B, V] with
 * `lastOnly`) and the keys/values of these T tokens (to extend the cache with). Creates tensors: call inside tf.tidy.
 */
export function forward(cfg: ModelConfig, w: Weights, input: ForwardInput, opts: ForwardOptions & { hiddenOnly: true }): { logits: null; hidden: tf.Tensor2D; kv: NewKV };
export function forward(cfg: ModelConfig, w: Weights, input: ForwardInput, opts?: ForwardOptions): { logits: tf.Tensor; kv: NewKV };
export function forward(cfg: ModelConfig, w: Weights, input: ForwardInput, opts: ForwardOptions = {}): { logits: tf.Tensor | null; hidden?: tf.Tensor2D; kv: NewKV } {
  const B = input.ids.length;
  const T = input.ids[0]?.length ?? 0;
  if (B === 0 || T === 0) throw new Error('forward: empty batch');
  if (wasmKernelsActive('elementwise')) useElementwiseKernels(); // the SIMD Add / Multiply / leading-axes Sum (kernels/elementwise.ts)
  if (wasmKernelsActive('copy')) useTransposeKernel(); // the tiled Transpose (kernels/copy.ts)
  const S = opts.cache ? cacheLength(opts.cache) : 0;
  const D = cfg.hidden_size;
  const V = cfg.vocab_size;
  const flat = new Int32Array(B * T);
  input.ids.forEach((row, b) => {
    if (row.length !== T) throw new Error(`forward: ids row ${b} has ${row.length} tokens, expected ${T} (pad the batch)`);
    row.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`forward: token id ${id} out of range [0, ${V})`);
      flat[b * T + t] = id;
    });
  });
  const positions = input.positions ?? [Array.from({ length: T }, (_, t) => S + t)];
  const { cos, sin } = ropeTables(cfg, positions); // [B|1, T, 1, hd]
  const rope = { cos, sin, rot: w.rot };
  const bias = attentionBias(B, cfg.num_attention_heads / cfg.num_key_value_heads, T, S, input.keyValid); // [B|1, 1, G*T, K]

  let x: tf.Tensor2D = embedding(w.embed, flat); // [B*T, D]
  const kv: NewKV = { k: [], v: [] };
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    // One tidy per layer: without a gradient tape the layer's intermediates (and lazily prepared weights)
    // are freed here (under a tape, tfjs keeps what the backward pass needs).
    const r = tidy(() => {
      const L = w.layer ? w.layer(i) : w.layers[i]!;
      const past = { k: opts.cache?.k[i] ?? [], v: opts.cache?.v[i] ?? [] };
      const a = attention(cfg, L, rmsNorm(x, L.inputNorm, cfg.rms_norm_eps), B, T, rope, bias, past);
      const h = tf.add(x, a.out) as tf.Tensor2D;
      return { x: tf.add(h, mlp(L, rmsNorm(h, L.postNorm, cfg.rms_norm_eps))) as tf.Tensor2D, k: a.k, v: a.v };
    });
    x = r.x;
    kv.k.push(r.k);
    kv.v.push(r.v);
  }
  if (opts.lastOnly && T > 1) x = tf.reshape(tf.slice(tf.reshape(x, [B, T, D]), [0, T - 1, 0], [B, 1, D]), [B, D]); // [B, D] (T = 1: already)
  const hidden = rmsNorm(x, w.norm, cfg.rms_norm_eps); // [B*T | B, D]
  if (opts.hiddenOnly) return { logits: null, hidden, kv };
  const logits = matmul(hidden, w.lmHead); // [B*T | B, V]
  return { logits: opts.lastOnly ? logits : tf.reshape(logits, [B, T, V]), kv };
}
