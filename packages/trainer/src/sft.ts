import * as tf from '@tensorflow/tfjs';
import { Rng, log, progress, type SftRow } from '@empo/core';
import type { Policy } from '@empo/policy';
import { AdamW, globalNorm } from './adamw.ts';
import { learningRateAt } from './schedule.ts';

export interface SftOptions {
  steps: number;
  batchSize: number;
  learningRate: number;
  warmupSteps: number;
  schedule: 'constant' | 'cosine';
  weightDecay: number;
  maxGradNorm: number;
  seed: number;
  /** Evaluate the held-out loss every this many steps (and at the end). */
  evalEvery: number;
  /** Called after each evaluation, e.g. to save an intermediate checkpoint. */
  onEval?: (step: number, heldOutLoss: number) => Promise<void> | void;
}

export interface SftExample {
  ids: number[];
  /** Index of the first completion token in ids. */
  completionStart: number;
}

/** prompt + completion + EOS, with the loss on completion tokens (and EOS) only. */
export function sftExample(policy: Policy, row: SftRow): SftExample {
  const prompt = policy.encodePrompt(row.prompt);
  return { ids: [...prompt, ...policy.tokenizer.encode(row.completion), policy.tokenizer.eosId], completionStart: prompt.length };
}

/** Mean negative log-likelihood per completion token of a batch (differentiable). */
export function sftLoss(policy: Policy, batch: readonly SftExample[]): tf.Scalar {
  return tf.tidy(() => {
    const logprobs = policy.sequenceLogprobs(batch.map((e) => e.ids)); // [B, T-1]
    const width = logprobs.shape[1];
    const mask = new Float32Array(batch.length * width);
    batch.forEach((e, b) => {
      for (let t = e.completionStart; t < e.ids.length; t++) mask[b * width + t - 1] = 1;
    });
    const m = tf.tensor2d(mask, [batch.length, width]);
    return tf.div(tf.neg(tf.sum(tf.mul(logprobs, m))), tf.sum(m)) as tf.Scalar;
  });
}

export function heldOutLoss(policy: Policy, examples: readonly SftExample[], batchSize: number): number {
  let total = 0;
  let tokens = 0;
  for (let i = 0; i < examples.length; i += batchSize) {
    const batch = examples.slice(i, i + batchSize);
    const n = batch.reduce((s, e) => s + e.ids.length - e.completionStart, 0);
    const loss = sftLoss(policy, batch);
    total += loss.dataSync()[0]! * n;
    tokens += n;
    loss.dispose();
  }
  return total / tokens;
}

/**
 * Supervised fine-tuning: next-token loss on completion tokens only, AdamW, warmup then
 * constant or cosine learning rate, gradient-norm clipping. Returns the held-out loss curve.
 */
export async function runSftLoop(policy: Policy, train: readonly SftExample[], heldOut: readonly SftExample[], options: SftOptions): Promise<{ step: number; loss: number; heldOut: number }[]> {
  const optimizer = new AdamW(policy.namedVariables(), {
    learningRate: options.learningRate, beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: options.weightDecay,
  });
  const named = policy.namedVariables();
  const byVariableName = new Map([...named].map(([hfName, v]) => [v.name, hfName]));
  const rng = Rng.derive(options.seed, 'sft-batches');
  const curve: { step: number; loss: number; heldOut: number }[] = [];
  const bar = progress('sft', options.steps);
  let running = 0;
  try {
    for (let step = 1; step <= options.steps; step++) {
      optimizer.options.learningRate = learningRateAt(step, options.steps, {
        base: options.learningRate, warmupSteps: options.warmupSteps, kind: options.schedule,
      });
      const batch = Array.from({ length: options.batchSize }, () => train[rng.int(train.length)]!);
      const { value, grads } = tf.variableGrads(() => sftLoss(policy, batch), [...named.values()]);
      const loss = value.dataSync()[0]!;
      value.dispose();
      if (!Number.isFinite(loss)) throw new Error(`sft: non-finite loss at step ${step}`);
      running = step === 1 ? loss : 0.95 * running + 0.05 * loss;
      const norm = globalNorm(Object.values(grads));
      const byName = new Map(Object.entries(grads).map(([name, g]) => [byVariableName.get(name)!, g]));
      optimizer.apply(byName, Math.min(1, options.maxGradNorm / (norm + 1e-6)));
      tf.dispose(Object.values(grads));
      bar.tick(1, `loss ${running.toFixed(3)}`);
      if (step % options.evalEvery === 0 || step === options.steps) {
        const held = heldOut.length ? heldOutLoss(policy, heldOut, options.batchSize) : Number.NaN;
        curve.push({ step, loss: running, heldOut: held });
        if (!process.stderr.isTTY) log.info(`sft: step ${step}/${options.steps} train loss ${running.toFixed(4)} held-out ${held.toFixed(4)}`);
        await options.onEval?.(step, held);
      }
    }
  } finally {
    bar.stop();
    optimizer.dispose();
  }
  return curve;
}
