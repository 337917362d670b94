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

/** Logit rows computed at once (bounds every [rows, V] block: 2^24 floats = 64 MB). */
const LOGIT_BLOCK = 2 ** 24;

/**
 * log_softmax(h[n] @ W / temperature)[target[n]] for hidden states h [N, D] and lm_head W [D, V] (0 where
 * target[n] < 0): the lm_head matmul, log-softmax and pick fused and computed in blocks of rows, so neither
 * the [N, V] logits nor a one-hot is ever stored. The hand-written gradient recomputes each block's logits
 * (dz = (scatter(g at the targets) - softmax(z) g) / temperature, g = dy masked) and accumulates
 * dh = dz @ W^T and dW = h^T @ dz block by block: the tape keeps only h and W.
 */
export function fusedLogprobs(h: tf.Tensor2D, W: tf.Tensor2D, targets: Int32Array, temperature = 1, blockFloats = LOGIT_BLOCK): tf.Tensor1D {
  const [N, D] = h.shape;
  const V = W.shape[1];
  if (targets.length !== N) throw new Error(`fusedLogprobs: ${targets.length} targets for ${N} rows`);
  const rows = Math.max(1, Math.min(N, Math.floor(blockFloats / V)));
  const blocks: { start: number; n: number; idx: Int32Array; mask: Float32Array }[] = [];
  for (let start = 0; start < N; start += rows) {
    const n = Math.min(rows, N - start);
    const idx = new Int32Array(n);
    const mask = new Float32Array(n);
    for (let k = 0; k < n; k++) {
      const t = targets[start + k]!;
      if (t >= V) throw new Error(`fusedLogprobs: target ${t} out of range [0, ${V})`);
      idx[k] = k * V + Math.max(0, t);
      mask[k] = t >= 0 ? 1 : 0;
    }
    blocks.push({ start, n, idx, mask });
  }
  const logitsOf = (H: tf.Tensor2D, Wm: tf.Tensor2D, b: (typeof blocks)[number]) => {
    const z = tf.matMul(blocks.length === 1 ? H : tf.slice(H, [b.start, 0], [b.n, D]), Wm); // [n, V]
    return temperature === 1 ? z : tf.div(z, temperature);
  };
  const f = tf.customGrad((hIn, wIn, save) => {
    const [H, Wm] = [hIn as tf.Tensor2D, wIn as tf.Tensor2D];
    (save as tf.GradSaveFunc)([H, Wm]);
    const parts = blocks.map((b) =>
      tf.tidy(() => {
        const z = logitsOf(H, Wm, b);
        const picked = tf.sub(tf.gather(tf.reshape(z, [-1]), tf.tensor1d(b.idx, 'int32')), tf.logSumExp(z, -1));
        return tf.mul(picked, tf.tensor1d(b.mask));
      }),
    );
    const value = parts.length === 1 ? parts[0]! : tf.concat(parts);
    if (parts.length > 1) tf.dispose(parts);
    return {
      value,
      gradFunc: (dy: tf.Tensor, [Hs, Ws]: tf.Tensor[]) => {
        const [H2, W2] = [Hs as tf.Tensor2D, Ws as tf.Tensor2D];
        const Wt = tf.transpose(W2); // [V, D]
        const dH: tf.Tensor[] = [];
        let dW: tf.Tensor | null = null;
        for (const b of blocks) {
          const [dHb, dWb] = tf.tidy(() => {
            const g = tf.mul(blocks.length === 1 ? dy : tf.slice(dy, [b.start], [b.n]), tf.tensor1d(b.mask)); // [n]
            const hit = tf.reshape(tf.scatterND(tf.reshape(tf.tensor1d(b.idx, 'int32'), [-1, 1]), g, [b.n * V]), [b.n, V]);
            let dz = tf.sub(hit, tf.mul(tf.softmax(logitsOf(H2, W2, b)), tf.expandDims(g, 1))); // [n, V]
            if (temperature !== 1) dz = tf.div(dz, temperature);
            const hb = blocks.length === 1 ? H2 : tf.slice(H2, [b.start, 0], [b.n, D]);
            return [tf.matMul(dz, Wt), tf.matMul(tf.transpose(hb), dz)]; // [n, D], [D, V]
          });
          dH.push(dHb);
          if (dW === null) dW = dWb;
          else {
            const sum: tf.Tensor = tf.add(dW, dWb);
            tf.dispose([dW, dWb]);
            dW = sum;
          }
        }
        Wt.dispose();
        const dHall = dH.length === 1 ? dH[0]! : tf.concat(dH);
        if (dH.length > 1) tf.dispose(dH);
        return [dHall, dW!];
      },
    };
  });
  return f(h, W) as tf.Tensor1D;
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
    const w = prepareWeights(cfg, weights);
    const { hidden } = forward(cfg, w, { ids: ids.map((s) => s.slice(0, T - 1)) }, { hiddenOnly: true }); // [B*(T-1), D]
    return tf.reshape(fusedLogprobs(hidden, w.lmHead, targets, temperature), [B, T - 1]) as tf.Tensor2D;
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
        return tf.sub(tf.gather(tf.reshape(z, [-1]), tf.tensor1d(flat, 'int32')), tf.logSumExp(z, -1));
      });
      values.set(part.dataSync() as Float32Array, r0);
      part.dispose();
    }
  });
  let k = 0;
  todo.forEach((i) => {
    out[i] = Array.from(values.subarray(k, k + completionIds[i]!.length));
    k += completionIds[i]!.length;
  });
  return out;
}
