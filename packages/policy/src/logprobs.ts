/**
 * Teacher-forced log-probabilities of token sequences: the differentiable quantity RL trainers optimise.
 * Ragged sequences are RIGHT-padded: with a causal mask, a real token never attends to a later pad, so no
 * padding mask is needed and position t of every row is token t of that sequence.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config.ts';
import { forward, prepareWeights } from './model.ts';

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
 * sum_v onehot[n][v] * log_softmax(z[n])[v]: z, onehot [N, V] (onehot rows one-hot or all zero) -> [N].
 * Hand-written gradient dz = dy * (onehot - softmax(z) * sum(onehot)), so the tape keeps only z.
 */
function pickLogprobs(z: tf.Tensor2D, onehot: tf.Tensor2D): tf.Tensor1D {
  const f = tf.customGrad((zIn, save) => {
    (save as tf.GradSaveFunc)([zIn as tf.Tensor, onehot]);
    return {
      value: tf.sum(tf.mul(tf.logSoftmax(zIn as tf.Tensor2D), onehot), -1),
      gradFunc: (dy: tf.Tensor, [Z, oh]: tf.Tensor[]) =>
        tf.mul(tf.expandDims(dy, 1), tf.sub(oh!, tf.mul(tf.softmax(Z!), tf.sum(oh!, -1, true)))),
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
  // onehot[b][t][v] = 1 iff v = ids[b][t+1] (all zero past the row's end), built on the host.
  const onehot = new Float32Array(B * (T - 1) * V);
  inputIds.forEach((s, b) => {
    for (let t = 0; t + 1 < s.length; t++) {
      const id = s[t + 1]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`sequenceLogprobs: token id ${id} out of range [0, ${V})`);
      onehot[(b * (T - 1) + t) * V + id] = 1;
    }
  });
  return tf.tidy(() => {
    // Only the first T-1 positions predict something; the model never sees a row's last token as input.
    const { logits } = forward(cfg, prepareWeights(cfg, weights), { ids: ids.map((s) => s.slice(0, T - 1)) }); // [B, T-1, V]
    const z = tf.reshape(temperature === 1 ? logits : tf.div(logits, temperature), [B * (T - 1), V]) as tf.Tensor2D;
    return tf.reshape(pickLogprobs(z, tf.tensor2d(onehot, [B * (T - 1), V])), [B, T - 1]) as tf.Tensor2D;
  });
}

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
  const seqs = todo.map((i) => [...promptIds[i]!, ...completionIds[i]!]);
  const values = tf.tidy(() => sequenceLogprobs(cfg, weights, padId, seqs, opts).arraySync() as number[][]);
  todo.forEach((i, r) => {
    const start = promptIds[i]!.length - 1;
    out[i] = values[r]!.slice(start, start + completionIds[i]!.length);
  });
  return out;
}
