/**
 * Teacher-forced log-probabilities of token sequences: the differentiable quantity RL trainers optimise.
 * Ragged sequences are RIGHT-padded: with a causal mask, a real token never attends to a later pad, so no
 * padding mask is needed and position t of every row is token t of that sequence.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config.ts';
import { forward, preferLazyLayers, prepareWeights } from './model.ts';

export interface LogprobOptions {
  /** Logits are divided by this before the log-softmax (default 1). */
  temperature?: number;
}

function checkTemperature(t: number): void {
  if (!(t > 0) || !Number.isFinite(t)) throw new Error(`temperature must be > 0, got ${t}`);
}

function rightPad(seqs: number[][], padId: number): { ids: number[][]; T: number } {
  const T = Math.max(0, ...seqs.map((s) => s.length));
  return { ids: seqs.map((s) => (s.length === T ? s : [...s, ...new Array<number>(T - s.length).fill(padId)])), T };
}

/**
 * log_softmax(z[n])[target[n]] for z [N, V] (0 where target[n] < 0), without a [N, V] one-hot: the value is a
 * gather from the flattened logits minus logsumexp; the hand-written gradient is
 * dz = scatter(dy at the targets) - softmax(z) * dy, and the tape keeps only z.
 */
function pickLogprobs(z: tf.Tensor2D, targets: Int32Array): tf.Tensor1D {
  const [N, V] = z.shape;
  if (N * V >= 2 ** 31) throw new Error(`pickLogprobs: ${N} x ${V} logits are too many for int32 indexing; use smaller batches`);
  const flat = new Int32Array(N);
  const valid = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    const t = targets[n]!;
    flat[n] = n * V + Math.max(0, t);
    valid[n] = t >= 0 ? 1 : 0;
  }
  const idx = tf.tensor1d(flat, 'int32');
  const mask = tf.tensor1d(valid);
  const f = tf.customGrad((zIn, save) => {
    const Z = zIn as tf.Tensor2D;
    (save as tf.GradSaveFunc)([Z, idx, mask]);
    return {
      value: tf.tidy(() => tf.mul(tf.sub(tf.gather(tf.reshape(Z, [-1]), idx), tf.logSumExp(Z, -1)), mask)),
      gradFunc: (dy: tf.Tensor, [Zs, ids, m]: tf.Tensor[]) => {
        const g = tf.mul(dy, m!); // [N]
        const hit = tf.reshape(tf.scatterND(tf.reshape(ids!, [-1, 1]), g, [N * V]), [N, V]);
        return tf.sub(hit, tf.mul(tf.softmax(Zs!), tf.expandDims(g, 1)));
      },
    };
  });
  return f(z) as tf.Tensor1D;
}

/**
 * Differentiable logits [B, T, V] of right-padded sequences (rows shorter than the longest are padded;
 * logits at pad positions are meaningless).
 */
export function sequenceLogits(cfg: ModelConfig, weights: ReadonlyMap<string, tf.Tensor>, padId: number, inputIds: number[][]): tf.Tensor3D {
  if (inputIds.length === 0 || inputIds.every((s) => s.length === 0)) throw new Error('sequenceLogits: empty batch');
  return tf.tidy(() => {
    const { ids } = rightPad(inputIds, padId);
    return forward(cfg, prepareWeights(cfg, weights), { ids }).logits as tf.Tensor3D;
  });
}

/**
 * Differentiable [B, T-1] tensor: out[b][t] = log p(ids[b][t+1] | ids[b][0..t]) at the given temperature,
 * T = longest sequence; entries past a row's own end (t >= len_b - 1) are 0. Usable inside
 * tf.variableGrads / optimizer.minimize.
 */
export function sequenceLogprobs(
  cfg: ModelConfig,
  weights: ReadonlyMap<string, tf.Tensor>,
  padId: number,
  inputIds: number[][],
  opts: LogprobOptions = {},
): tf.Tensor2D {
  const temperature = opts.temperature ?? 1;
  checkTemperature(temperature);
  const B = inputIds.length;
  const { ids, T } = rightPad(inputIds, padId);
  if (B === 0 || T < 2) throw new Error(`sequenceLogprobs: need at least one sequence of 2+ tokens (got B=${B}, T=${T})`);
  const V = cfg.vocab_size;
  // targets[b][t] = ids[b][t+1], -1 past the row's end.
  const targets = new Int32Array(B * (T - 1)).fill(-1);
  inputIds.forEach((s, b) => {
    for (let t = 0; t + 1 < s.length; t++) {
      const id = s[t + 1]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`sequenceLogprobs: token id ${id} out of range [0, ${V})`);
      targets[b * (T - 1) + t] = id;
    }
  });
  return tf.tidy(() => {
    // Only the first T-1 positions predict something; the model never sees a row's last token as input.
    const { logits } = forward(cfg, prepareWeights(cfg, weights), { ids: ids.map((s) => s.slice(0, T - 1)) }); // [B, T-1, V]
    const z = tf.reshape(temperature === 1 ? logits : tf.div(logits, temperature), [B * (T - 1), V]) as tf.Tensor2D;
    return tf.reshape(pickLogprobs(z, targets), [B, T - 1]) as tf.Tensor2D;
  });
}

/** Logit rows computed at once by completionLogprobs (bounds the [rows, V] block: 2^24 floats = 64 MB). */
const LOGIT_BLOCK = 2 ** 24;

/**
 * Non-differentiable: per sequence, the log-probs of each completion token given its prompt and the
 * completion tokens before it (teacher forcing). Prompts must be non-empty.
 */
export function completionLogprobs(
  cfg: ModelConfig,
  weights: ReadonlyMap<string, tf.Tensor>,
  padId: number,
  promptIds: number[][],
  completionIds: number[][],
  opts: LogprobOptions = {},
): number[][] {
  if (promptIds.length !== completionIds.length) {
    throw new Error(`completionLogprobs: ${promptIds.length} prompts but ${completionIds.length} completions`);
  }
  promptIds.forEach((p, i) => {
    if (p.length === 0) throw new Error(`completionLogprobs: prompt ${i} is empty`);
  });
  const out: number[][] = promptIds.map(() => []);
  const todo = promptIds.flatMap((_, i) => (completionIds[i]!.length > 0 ? [i] : []));
  if (todo.length === 0) return out;
  const temperature = opts.temperature ?? 1;
  checkTemperature(temperature);
  const V = cfg.vocab_size;
  const seqs = todo.map((i) => [...promptIds[i]!, ...completionIds[i]!]);
  const { ids, T } = rightPad(seqs, padId);
  // Rows of the [B*(T-1), D] hidden states that predict a completion token, and that token.
  const rows: number[] = [];
  const targets: number[] = [];
  todo.forEach((i, b) => {
    const start = promptIds[i]!.length - 1;
    completionIds[i]!.forEach((id, k) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`completionLogprobs: token id ${id} out of range [0, ${V})`);
      rows.push(b * (T - 1) + start + k);
      targets.push(id);
    });
  });
  const values = new Float32Array(rows.length);
  tf.tidy(() => {
    // No gradient here: the hidden states are computed once, then lm_head and the log-softmax run on the
    // needed rows only, in blocks, so no [B*T, V] tensor (logits or one-hot) exists at once.
    const w = prepareWeights(cfg, weights, { lazyLayers: preferLazyLayers(cfg) });
    const { hidden } = forward(cfg, w, { ids: ids.map((s) => s.slice(0, T - 1)) }, { hiddenOnly: true }); // [B*(T-1), D]
    const picked = tf.gather(hidden, tf.tensor1d(rows, 'int32')); // [M, D]
    const block = Math.max(1, Math.floor(LOGIT_BLOCK / V));
    for (let r0 = 0; r0 < rows.length; r0 += block) {
      const n = Math.min(block, rows.length - r0);
      const part = tf.tidy(() => {
        const logits = tf.matMul(tf.slice(picked, [r0, 0], [n, -1]), w.lmHead); // [n, V]
        const z = temperature === 1 ? logits : tf.div(logits, temperature);
        const flat = Int32Array.from({ length: n }, (_, k) => k * V + targets[r0 + k]!);
        return tf.sub(tf.gather(tf.reshape(z, [-1]), tf.tensor1d(flat, 'int32')), tf.logSumExp(z, -1)).dataSync() as Float32Array;
      });
      values.set(part, r0);
    }
  });
  let k = 0;
  todo.forEach((i) => {
    out[i] = Array.from(values.subarray(k, k + completionIds[i]!.length));
    k += completionIds[i]!.length;
  });
  return out;
}
