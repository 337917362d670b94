/**
 * The gradient of the policy loss on one micro-batch: the unit of work of an update, computed the same way in
 * the trainer's thread and in a worker thread (worker-tasks.ts). An update cuts its examples into micro-batches
 * that depend only on the examples and micro_batch_size (never on the number of workers), computes each one's
 * gradient, and sums them in micro-batch order, so every worker count gives the same float32 sums.
 */
import * as tf from '@tensorflow/tfjs';
import { sequenceLogprobs, type ModelConfig } from '@empo/policy';
import { klK3, policyLoss, ratioStats, type LossType } from './loss.ts';

export interface Example {
  ids: number[];
  promptLength: number;
  oldLogprobs: number[];
  advantage: number;
}

/** The loss settings shared by every micro-batch of an update. */
export interface LossSettings {
  epsilonLow: number;
  epsilonHigh: number;
  beta: number;
  lossType: LossType;
  /** Batch-wide normalizer (see PolicyLossInputs.normalizer). */
  normalizer: number;
}

/** What the gradient needs of a model: its config, pad id and trainable weights keyed by Hugging Face name. */
export interface TrainableModel {
  readonly config: ModelConfig;
  readonly padId: number;
  readonly weights: ReadonlyMap<string, tf.Variable>;
}

/** One micro-batch as tensors aligned with sequenceLogprobs' [B, T-1] output (column j predicts token j+1). */
export interface MicroBatch {
  examples: Example[];
  /** 1 on completion tokens. */
  mask: tf.Tensor2D;
  /** Old-policy log-probs (the sampler's, or recomputed), 0 off the completion. */
  old: tf.Tensor2D;
  adv: tf.Tensor1D;
  /** Reference-model log-probs (beta > 0). */
  ref?: tf.Tensor2D;
}

/**
 * The fixed partition of n examples into micro-batches of at most `maxSize`: ceil(n / maxSize) parts, rounded up
 * to an even count (so that two workers share an update evenly; never more parts than examples), of sizes that
 * differ by at most one. Returns [start, end) ranges in order.
 */
export function microBatchRanges(n: number, maxSize: number): [number, number][] {
  if (n === 0) return [];
  let parts = Math.ceil(n / maxSize);
  if (parts % 2 === 1 && parts < n) parts++;
  const out: [number, number][] = [];
  let start = 0;
  for (let p = 0; p < parts; p++) {
    const size = Math.floor(n / parts) + (p < n % parts ? 1 : 0);
    out.push([start, start + size]);
    start += size;
  }
  return out;
}

/**
 * The micro-batches of an update: the examples sorted by length, longest first (ties keep their order), cut by
 * microBatchRanges. Sequences of similar lengths share a micro-batch, so little of it is padding. Longest first
 * because that is also the order workers take them in (the last to finish are the short ones) and the order
 * their gradients are summed in (so the sum can run while the later ones are computed). Depends only on the
 * examples and the maximum size, never on the number of workers.
 */
export function microBatches<T extends { ids: readonly number[] }>(examples: readonly T[], maxSize: number): T[][] {
  const sorted = examples.map((e, i) => ({ e, i })).sort((a, b) => b.e.ids.length - a.e.ids.length || a.i - b.i).map((x) => x.e);
  return microBatchRanges(sorted.length, maxSize).map(([a, b]) => sorted.slice(a, b));
}

/** Build a micro-batch's tensors (the caller disposes them with disposeMicroBatch). */
export function microBatch(examples: Example[]): MicroBatch {
  const width = Math.max(...examples.map((e) => e.ids.length)) - 1;
  const mask = new Float32Array(examples.length * width);
  const old = new Float32Array(examples.length * width);
  examples.forEach((e, b) => {
    e.oldLogprobs.forEach((lp, t) => {
      const column = e.promptLength - 1 + t;
      mask[b * width + column] = 1;
      old[b * width + column] = lp;
    });
  });
  return {
    examples,
    mask: tf.tensor2d(mask, [examples.length, width]),
    old: tf.tensor2d(old, [examples.length, width]),
    adv: tf.tensor1d(examples.map((e) => e.advantage)),
  };
}

export function disposeMicroBatch(b: MicroBatch): void {
  tf.dispose([b.mask, b.old, b.adv, ...(b.ref ? [b.ref] : [])]);
}

/** log pi(token) of every next token of the micro-batch's sequences under `model`, masked to the completions. */
export function maskedLogprobs(model: Omit<TrainableModel, 'weights'> & { weights: ReadonlyMap<string, tf.Tensor> }, b: MicroBatch): tf.Tensor2D {
  return tf.tidy(() => tf.mul(sequenceLogprobs(model.config, model.weights, model.padId, b.examples.map((e) => e.ids)), b.mask) as tf.Tensor2D);
}

/** Reference log-probs (unmasked, as the KL term reads them). */
export function referenceLogprobs(reference: Omit<TrainableModel, 'weights'> & { weights: ReadonlyMap<string, tf.Tensor> }, b: MicroBatch): tf.Tensor2D {
  return tf.tidy(() => sequenceLogprobs(reference.config, reference.weights, reference.padId, b.examples.map((e) => e.ids)));
}

export interface MicroBatchGradient {
  /** This micro-batch's share of the loss (losses of all micro-batches sum to the batch loss). */
  loss: number;
  /** With stats: completion tokens the clip changed, the sum of the ratio, and the sum of the k3 KL. */
  clipped: number;
  ratioSum: number;
  kl: number;
  /** d loss / d weight, keyed by Hugging Face name (the caller disposes them). */
  grads: Map<string, tf.Tensor>;
}

/** The gradient of the policy loss on one micro-batch (and, with `withStats`, its clip and KL statistics). */
export function microBatchGradient(model: TrainableModel, b: MicroBatch, settings: LossSettings, withStats: boolean): MicroBatchGradient {
  const names = new Map([...model.weights].map(([name, v]) => [v.name, name]));
  let clipped = 0;
  let ratioSum = 0;
  let kl = 0;
  const { value, grads } = tf.variableGrads(() => {
    const logprobs = sequenceLogprobs(model.config, model.weights, model.padId, b.examples.map((e) => e.ids));
    const inputs = { ...settings, logprobs, oldLogprobs: b.old, refLogprobs: b.ref, mask: b.mask, advantages: b.adv };
    if (withStats) {
      const stats = ratioStats(inputs);
      clipped = stats.clipped;
      ratioSum = stats.ratioSum;
      if (b.ref) kl = tf.tidy(() => tf.sum(tf.mul(klK3(logprobs, b.ref!), b.mask)).dataSync()[0]!);
    }
    return policyLoss(inputs);
  }, [...model.weights.values()]);
  const loss = value.dataSync()[0]!;
  value.dispose();
  const byName = new Map<string, tf.Tensor>();
  for (const [variableName, g] of Object.entries(grads)) byName.set(names.get(variableName)!, g);
  return { loss, clipped, ratioSum, kl, grads: byName };
}
