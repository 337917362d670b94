/**
 * The trainer's task for PolicyWorkers threads (loaded into every worker by URL, see `trainerTaskModule`):
 * the gradient of one micro-batch on the worker's copy of the policy, returned as one flat float32 array in
 * the order of the synced weights.
 */
import * as tf from '@tensorflow/tfjs';
import { readInto, type TaskModule, type WorkerModel } from '@empo/policy';
import { disposeMicroBatch, maskedLogprobs, microBatch, microBatchGradient, referenceLogprobs, type Example, type LossSettings } from './gradient.ts';

export interface GradientTask {
  examples: Example[];
  settings: LossSettings;
  /** Compute the clip and KL statistics (first iteration). */
  withStats: boolean;
  /** Old log-probs [B * (T-1)] to use instead of the sampler's (recomputed earlier), or 'recompute' them now. */
  old?: Float32Array | 'recompute';
  /** Reference log-probs [B * (T-1)], or 'compute' them with the weights of slot 'reference'. */
  ref?: Float32Array | 'compute';
  /**
   * Where to write the gradient (float32, at least as many values as the weights): a buffer the caller keeps
   * and reuses, so that no task allocates (and V8 then collects) megabytes per micro-batch. Default: a new array.
   */
  out?: SharedArrayBuffer;
}

export interface GradientResult {
  loss: number;
  clipped: number;
  ratioSum: number;
  kl: number;
  /** Every weight's gradient, concatenated in the order of `names` (a view of the task's `out` when given). */
  grads: Float32Array;
  names: string[];
  /** The old and reference log-probs this task computed (to reuse in later iterations). */
  old?: Float32Array;
  ref?: Float32Array;
}

function gradient(model: WorkerModel, task: GradientTask): GradientResult {
  const weights = model.weightsOf('policy');
  const b = microBatch(task.examples);
  const computed: { old?: Float32Array; ref?: Float32Array } = {};
  try {
    if (task.old === 'recompute') {
      const old = maskedLogprobs(model, b);
      computed.old = (old.dataSync() as Float32Array).slice();
      b.old.dispose();
      b.old = old;
    } else if (task.old) {
      b.old.dispose();
      b.old = tf.tensor2d(task.old, b.mask.shape);
    }
    if (task.ref === 'compute') {
      b.ref = referenceLogprobs({ config: model.config, padId: model.padId, weights: model.weightsOf('reference') }, b);
      computed.ref = (b.ref.dataSync() as Float32Array).slice();
    } else if (task.ref) {
      b.ref = tf.tensor2d(task.ref, b.mask.shape);
    }
    const r = microBatchGradient({ config: model.config, padId: model.padId, weights }, b, task.settings, task.withStats);
    const size = [...weights.values()].reduce((n, v) => n + v.size, 0);
    if (task.out && task.out.byteLength < size * 4) throw new Error(`trainer worker: the output buffer holds ${task.out.byteLength / 4} values, the gradient ${size}`);
    const grads = task.out ? new Float32Array(task.out, 0, size) : new Float32Array(size);
    let offset = 0;
    for (const [name, v] of weights) {
      const g = r.grads.get(name);
      if (!g) throw new Error(`trainer worker: no gradient for ${name}`);
      readInto(g, grads, offset);
      offset += v.size;
    }
    tf.dispose([...r.grads.values()]);
    return { loss: r.loss, clipped: r.clipped, ratioSum: r.ratioSum, kl: r.kl, grads, names: [...weights.keys()], ...computed };
  } finally {
    disposeMicroBatch(b);
  }
}

export const tasks: TaskModule['tasks'] = {
  'trainer.gradient': gradient as TaskModule['tasks'][string],
};

/** This module, for PolicyWorkers.start's `taskModules`. */
export const trainerTaskModule = new URL(import.meta.url);
