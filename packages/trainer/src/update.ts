import * as tf from '@tensorflow/tfjs';
import type { ClusterRow, RolloutRow, TrainerConfig } from '@empo/core';
import type { Policy } from '@empo/policy';
import { AdamW, globalNorm } from './adamw.ts';
import { advantagesByRollout, rolloutKey } from './advantages.ts';
import { clippedTokenCount, grpoLoss } from './loss.ts';

export interface UpdateStats {
  loss: number;
  gradNorm: number;
  clipRatio: number;
  sequences: number;
  tokens: number;
  completionTokens: number;
  seconds: number;
}

interface Example {
  ids: number[];
  promptLength: number;
  oldLogprobs: number[];
  advantage: number;
}

/** The sequences that take part in the update: rollouts of kept groups, with their advantages. */
export function buildExamples(rollouts: readonly RolloutRow[], clusters: readonly ClusterRow[], config: TrainerConfig): Example[] {
  const advantages = advantagesByRollout(clusters, config.advantage_epsilon);
  const examples: Example[] = [];
  for (const r of rollouts) {
    const advantage = advantages.get(rolloutKey(r.question_id, r.sample_index));
    if (advantage === undefined || r.completion_ids.length === 0) continue;
    examples.push({
      ids: [...r.prompt_ids, ...r.completion_ids],
      promptLength: r.prompt_ids.length,
      oldLogprobs: r.logprobs,
      advantage,
    });
  }
  return examples;
}

/** Masks and old log-probs aligned with sequenceLogprobs' [B, T-1] output (column j predicts token j+1). */
function alignTargets(batch: readonly Example[]): { mask: tf.Tensor2D; old: tf.Tensor2D; adv: tf.Tensor1D } {
  const width = Math.max(...batch.map((e) => e.ids.length)) - 1;
  const mask = new Float32Array(batch.length * width);
  const old = new Float32Array(batch.length * width);
  batch.forEach((e, b) => {
    e.oldLogprobs.forEach((lp, t) => {
      const column = e.promptLength - 1 + t;
      mask[b * width + column] = 1;
      old[b * width + column] = lp;
    });
  });
  return {
    mask: tf.tensor2d(mask, [batch.length, width]),
    old: tf.tensor2d(old, [batch.length, width]),
    adv: tf.tensor1d(batch.map((e) => e.advantage)),
  };
}

/**
 * One policy-gradient update over all examples: gradients of the GRPO loss accumulated over
 * micro-batches (memory bounded by micro_batch_size), clipped to max_grad_norm, then one AdamW step.
 */
export function policyUpdate(policy: Policy, optimizer: AdamW, examples: readonly Example[], config: TrainerConfig): UpdateStats {
  const start = Date.now();
  const named = policy.namedVariables();
  const byVariableName = new Map([...named].map(([hfName, v]) => [v.name, hfName]));
  const varList = [...named.values()];
  const accumulated = new Map<string, tf.Tensor>();
  let loss = 0;
  let clipped = 0;
  let completionTokens = 0;
  let tokens = 0;
  for (let i = 0; i < examples.length; i += config.micro_batch_size) {
    const batch = examples.slice(i, i + config.micro_batch_size);
    const { mask, old, adv } = alignTargets(batch);
    const { value, grads } = tf.variableGrads(() => {
      const logprobs = policy.sequenceLogprobs(batch.map((e) => e.ids));
      clipped += clippedTokenCount({ logprobs, oldLogprobs: old, mask, advantages: adv, epsilon: config.epsilon });
      return grpoLoss({ logprobs, oldLogprobs: old, mask, advantages: adv, epsilon: config.epsilon, totalSequences: examples.length });
    }, varList);
    loss += value.dataSync()[0]!;
    value.dispose();
    for (const [variableName, g] of Object.entries(grads)) {
      const name = byVariableName.get(variableName)!;
      const previous = accumulated.get(name);
      if (previous) {
        accumulated.set(name, tf.add(previous, g));
        previous.dispose();
        g.dispose();
      } else {
        accumulated.set(name, g);
      }
    }
    completionTokens += batch.reduce((n, e) => n + e.oldLogprobs.length, 0);
    tokens += batch.reduce((n, e) => n + e.ids.length, 0);
    tf.dispose([mask, old, adv]);
  }
  const gradNorm = globalNorm(accumulated.values());
  if (examples.length > 0) {
    const scale = Math.min(1, config.max_grad_norm / (gradNorm + 1e-6));
    const clippedGrads = new Map([...accumulated].map(([name, g]) => [name, tf.mul(g, scale)]));
    optimizer.apply(clippedGrads);
    tf.dispose([...clippedGrads.values()]);
  }
  tf.dispose([...accumulated.values()]);
  return {
    loss,
    gradNorm,
    clipRatio: completionTokens ? clipped / completionTokens : 0,
    sequences: examples.length,
    tokens,
    completionTokens,
    seconds: (Date.now() - start) / 1000,
  };
}
