import * as tf from '@tensorflow/tfjs';
import type { ClusterRow, RolloutRow, TrainerConfig } from '@empo/core';
import type { Policy } from '@empo/policy';
import { AdamW, globalNorm } from './adamw.ts';
import { advantagesByRollout, rolloutKey } from './advantages.ts';
import { klK3, lossNormalizer, policyLoss, ratioStats } from './loss.ts';

export interface UpdateStats {
  loss: number;
  gradNorm: number;
  clipRatio: number;
  /** Mean ratio pi_theta / pi_old over completion tokens in the first iteration (1 when nothing changed). */
  ratioMean: number;
  kl: number;
  sequences: number;
  tokens: number;
  completionTokens: number;
  optimizerSteps: number;
  seconds: number;
}

export interface Example {
  ids: number[];
  promptLength: number;
  oldLogprobs: number[];
  advantage: number;
}

/** The sequences that take part in the update: rollouts of kept groups, with their advantages. */
export function buildExamples(rollouts: readonly RolloutRow[], clusters: readonly ClusterRow[], config: TrainerConfig): Example[] {
  const advantages = advantagesByRollout(clusters, config.advantage_epsilon, config.scale_rewards);
  const examples: Example[] = [];
  for (const r of rollouts) {
    const advantage = advantages.get(rolloutKey(r.question_id, r.sample_index));
    if (advantage === undefined || r.completion_ids.length === 0) continue;
    examples.push({ ids: [...r.prompt_ids, ...r.completion_ids], promptLength: r.prompt_ids.length, oldLogprobs: r.logprobs, advantage });
  }
  return examples;
}

interface MicroBatch {
  examples: Example[];
  mask: tf.Tensor2D;
  old: tf.Tensor2D;
  adv: tf.Tensor1D;
  ref?: tf.Tensor2D;
}

/** Mask and old log-probs aligned with sequenceLogprobs' [B, T-1] output (column j predicts token j+1). */
function microBatch(examples: Example[]): MicroBatch {
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

export interface UpdateOptions {
  /** Frozen reference model for the KL term (required when beta > 0). */
  reference?: Policy;
  /** Longest completion the sampler could produce (the Dr. GRPO constant). */
  maxCompletionLength: number;
}

/**
 * The policy update for one rollout batch: num_iterations optimizer steps, each over all
 * examples with gradients accumulated over micro-batches of micro_batch_size sequences
 * (memory stays bounded; the sum equals the full-batch gradient), clipped to max_grad_norm.
 */
export function policyUpdate(policy: Policy, optimizer: AdamW, examples: readonly Example[], config: TrainerConfig, options: UpdateOptions): UpdateStats {
  const start = Date.now();
  const named = policy.namedVariables();
  const byVariableName = new Map([...named].map(([hfName, v]) => [v.name, hfName]));
  const varList = [...named.values()];
  const completionTokens = examples.reduce((n, e) => n + e.oldLogprobs.length, 0);
  const tokens = examples.reduce((n, e) => n + e.ids.length, 0);
  const batches: MicroBatch[] = [];
  for (let i = 0; i < examples.length; i += config.micro_batch_size) batches.push(microBatch(examples.slice(i, i + config.micro_batch_size)));
  if (config.beta > 0 && !options.reference) throw new Error('policyUpdate: beta > 0 needs a reference model');
  for (const b of batches) {
    const ids = b.examples.map((e) => e.ids);
    if (config.beta > 0) b.ref = tf.tidy(() => options.reference!.sequenceLogprobs(ids));
    if (config.old_logprobs === 'recompute') {
      const recomputed = tf.tidy(() => tf.mul(policy.sequenceLogprobs(ids), b.mask) as tf.Tensor2D);
      b.old.dispose();
      b.old = recomputed;
    }
  }
  const common = {
    epsilonLow: config.epsilon,
    epsilonHigh: config.epsilon_high ?? config.epsilon,
    beta: config.beta,
    lossType: config.loss_type,
    normalizer: lossNormalizer(config.loss_type, examples.length, completionTokens, options.maxCompletionLength),
  };
  let loss = 0;
  let clipped = 0;
  let ratioSum = 0;
  let klSum = 0;
  let gradNorm = 0;
  let optimizerSteps = 0;
  try {
    for (let iteration = 0; iteration < config.num_iterations && examples.length > 0; iteration++) {
      const accumulated = new Map<string, tf.Tensor>();
      let iterationLoss = 0;
      for (const b of batches) {
        const { value, grads } = tf.variableGrads(() => {
          const logprobs = policy.sequenceLogprobs(b.examples.map((e) => e.ids));
          const inputs = { ...common, logprobs, oldLogprobs: b.old, refLogprobs: b.ref, mask: b.mask, advantages: b.adv };
          if (iteration === 0) {
            const stats = ratioStats(inputs);
            clipped += stats.clipped;
            ratioSum += stats.ratioSum;
            if (b.ref) klSum += tf.tidy(() => tf.sum(tf.mul(klK3(logprobs, b.ref!), b.mask)).dataSync()[0]!);
          }
          return policyLoss(inputs);
        }, varList);
        iterationLoss += value.dataSync()[0]!;
        value.dispose();
        for (const [variableName, g] of Object.entries(grads)) {
          const name = byVariableName.get(variableName)!;
          const previous = accumulated.get(name);
          if (previous) {
            accumulated.set(name, tf.add(previous, g));
            tf.dispose([previous, g]);
          } else {
            accumulated.set(name, g);
          }
        }
      }
      const norm = globalNorm(accumulated.values());
      if (iteration === 0) {
        gradNorm = norm;
        loss = iterationLoss;
      }
      if (!Number.isFinite(norm) || !Number.isFinite(iterationLoss)) {
        tf.dispose([...accumulated.values()]);
        return { loss: Number.NaN, gradNorm: norm, clipRatio: 0, ratioMean: Number.NaN, kl: Number.NaN, sequences: examples.length, tokens, completionTokens, optimizerSteps, seconds: (Date.now() - start) / 1000 };
      }
      const scale = Math.min(1, config.max_grad_norm / (norm + 1e-6));
      const clippedGrads = new Map([...accumulated].map(([name, g]) => [name, tf.mul(g, scale)]));
      optimizer.apply(clippedGrads);
      optimizerSteps++;
      tf.dispose([...clippedGrads.values(), ...accumulated.values()]);
    }
  } finally {
    for (const b of batches) tf.dispose([b.mask, b.old, b.adv, ...(b.ref ? [b.ref] : [])]);
  }
  return {
    loss,
    gradNorm,
    clipRatio: completionTokens ? clipped / completionTokens : 0,
    ratioMean: completionTokens ? ratioSum / completionTokens : 1,
    kl: completionTokens ? klSum / completionTokens : 0,
    sequences: examples.length,
    tokens,
    completionTokens,
    optimizerSteps,
    seconds: (Date.now() - start) / 1000,
  };
}
