import * as tf from '@tensorflow/tfjs';
import type { ClusterRow, RolloutRow, TrainerConfig } from '@empo/core';
import type { Policy, PolicyWorkers } from '@empo/policy';
import { AdamW, globalNorm } from './adamw.ts';
import { advantagesByRollout, rolloutKey } from './advantages.ts';
import {
  disposeMicroBatch, maskedLogprobs, microBatch, microBatches, microBatchGradient, referenceLogprobs,
  type Example, type LossSettings, type MicroBatch,
} from './gradient.ts';
import { lossNormalizer } from './loss.ts';
import { OrderedGradientSum } from './gradient-sum.ts';
import type { GradientResult, GradientTask } from './worker-tasks.ts';

export type { Example } from './gradient.ts';

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

export interface UpdateOptions {
  /** Frozen reference model for the KL term (required when beta > 0). */
  reference?: Policy;
  /** Longest completion the sampler could produce (the Dr. GRPO constant). */
  maxCompletionLength: number;
}

/** Sums over the micro-batches of one iteration, added in micro-batch order. */
interface IterationSums {
  loss: number;
  clipped: number;
  ratioSum: number;
  kl: number;
}

/** What every update shares: the micro-batches, the loss settings, token counts and the running statistics. */
class Update {
  readonly start = Date.now();
  /** The fixed partition of the examples (see microBatches), in summation order. */
  readonly parts: Example[][];
  readonly settings: LossSettings;
  readonly tokens: number;
  readonly completionTokens: number;
  loss = 0;
  gradNorm = 0;
  clipped = 0;
  ratioSum = 0;
  kl = 0;
  optimizerSteps = 0;

  constructor(readonly policy: Policy, readonly optimizer: AdamW, readonly examples: readonly Example[], readonly config: TrainerConfig, options: UpdateOptions) {
    if (config.beta > 0 && !options.reference) throw new Error('policyUpdate: beta > 0 needs a reference model');
    this.completionTokens = examples.reduce((n, e) => n + e.oldLogprobs.length, 0);
    this.tokens = examples.reduce((n, e) => n + e.ids.length, 0);
    this.parts = microBatches(examples, config.micro_batch_size);
    this.settings = {
      epsilonLow: config.epsilon,
      epsilonHigh: config.epsilon_high ?? config.epsilon,
      beta: config.beta,
      lossType: config.loss_type,
      normalizer: lossNormalizer(config.loss_type, examples.length, this.completionTokens, options.maxCompletionLength),
    };
  }

  get iterations(): number {
    return this.examples.length > 0 ? this.config.num_iterations : 0;
  }

  /**
   * Clip the summed gradients to max_grad_norm and take an optimizer step (disposes `grads`). Returns false,
   * applying nothing, when the loss or the gradient is not finite.
   */
  apply(iteration: number, grads: Map<string, tf.Tensor>, sums: IterationSums): boolean {
    const norm = globalNorm(grads.values());
    if (iteration === 0) {
      this.gradNorm = norm;
      this.loss = sums.loss;
      this.clipped = sums.clipped;
      this.ratioSum = sums.ratioSum;
      this.kl = sums.kl;
    }
    if (!Number.isFinite(norm) || !Number.isFinite(sums.loss)) {
      tf.dispose([...grads.values()]);
      this.gradNorm = norm;
      this.loss = Number.NaN;
      return false;
    }
    this.optimizer.apply(grads, Math.min(1, this.config.max_grad_norm / (norm + 1e-6))); // clipped to max_grad_norm
    this.optimizerSteps++;
    tf.dispose([...grads.values()]);
    return true;
  }

  stats(ok: boolean): UpdateStats {
    const c = this.completionTokens;
    return {
      loss: ok ? this.loss : Number.NaN,
      gradNorm: this.gradNorm,
      clipRatio: ok && c ? this.clipped / c : 0,
      ratioMean: ok ? (c ? this.ratioSum / c : 1) : Number.NaN,
      kl: ok ? (c ? this.kl / c : 0) : Number.NaN,
      sequences: this.examples.length,
      tokens: this.tokens,
      completionTokens: c,
      optimizerSteps: this.optimizerSteps,
      seconds: (Date.now() - this.start) / 1000,
    };
  }
}

/**
 * The policy update for one rollout batch: num_iterations optimizer steps, each over all examples with
 * gradients accumulated over micro-batches of at most micro_batch_size sequences (memory stays bounded; the
 * sum equals the full-batch gradient), clipped to max_grad_norm. The micro-batches are a fixed partition of
 * the examples (see microBatches: sorted by length, then cut), summed in order: `policyUpdateParallel` gives
 * the same result.
 */
export function policyUpdate(policy: Policy, optimizer: AdamW, examples: readonly Example[], config: TrainerConfig, options: UpdateOptions): UpdateStats {
  const u = new Update(policy, optimizer, examples, config, options);
  const model = { config: policy.config, padId: policy.padId, weights: policy.namedVariables() };
  const batches: MicroBatch[] = u.parts.map((part) => microBatch(part));
  try {
    for (const b of batches) {
      if (config.beta > 0) b.ref = referenceLogprobs(options.reference!, b);
      if (config.old_logprobs === 'recompute') {
        const recomputed = maskedLogprobs(policy, b);
        b.old.dispose();
        b.old = recomputed;
      }
    }
    for (let iteration = 0; iteration < u.iterations; iteration++) {
      const accumulated = new Map<string, tf.Tensor>();
      const sums: IterationSums = { loss: 0, clipped: 0, ratioSum: 0, kl: 0 };
      for (const b of batches) {
        const r = microBatchGradient(model, b, u.settings, iteration === 0);
        addSums(sums, r);
        for (const [name, g] of r.grads) {
          const previous = accumulated.get(name);
          if (previous) {
            accumulated.set(name, tf.add(previous, g));
            tf.dispose([previous, g]);
          } else {
            accumulated.set(name, g);
          }
        }
      }
      if (!u.apply(iteration, accumulated, sums)) return u.stats(false);
    }
  } finally {
    batches.forEach(disposeMicroBatch);
  }
  return u.stats(true);
}

/**
 * `policyUpdate` with the micro-batches' gradients computed by worker threads (each on its copy of the
 * policy, synced before every iteration) and summed here in micro-batch order (OrderedGradientSum), in
 * float32: the same arithmetic as policyUpdate, so the weights and optimizer state after the update are identical
 * to it, whatever the number of workers. Clipping and the AdamW step run in this thread. This thread's work
 * during the update (the sum, `onWorkerFree`) waits until a worker has no task left, so that it takes no core
 * from a computing worker.
 */
export async function policyUpdateParallel(
  policy: Policy,
  optimizer: AdamW,
  examples: readonly Example[],
  config: TrainerConfig,
  options: UpdateOptions & {
    workers: PolicyWorkers;
    /**
     * Called once per iteration, as soon as fewer gradient tasks remain than there are workers: from then on a
     * worker's core stays free until the iteration ends, so work of this thread's own (a metrics file to encode)
     * costs the workers nothing there. Called at the iteration's start when it has fewer tasks than workers.
     */
    onWorkerFree?: () => void;
  },
): Promise<UpdateStats> {
  const u = new Update(policy, optimizer, examples, config, options);
  const { workers, reference } = options;
  // Reference log-probs in the workers when the reference model has the policy's architecture, else here.
  const refInWorkers = config.beta > 0 && JSON.stringify(reference!.config) === JSON.stringify(policy.config) && reference!.padId === policy.padId;
  const old: (Float32Array | undefined)[] = [];
  const ref: (Float32Array | undefined)[] = u.parts.map((part) => {
    if (config.beta === 0 || refInWorkers) return undefined;
    const mb = microBatch(part);
    const lp = referenceLogprobs(reference!, mb);
    try {
      return (lp.dataSync() as Float32Array).slice();
    } finally {
      lp.dispose();
      disposeMicroBatch(mb);
    }
  });
  if (refInWorkers) await workers.syncWeights(reference!.weights, 'reference');
  const outputs = gradientBuffers(workers, u.parts.length, [...policy.weights.values()].reduce((n, v) => n + v.size, 0));
  for (let iteration = 0; iteration < u.iterations; iteration++) {
    await workers.syncWeights(policy.weights);
    // Handed out in micro-batch order (longest first, see microBatches), and summed from the moment a worker has
    // no task left (its core is free until the last task ends; see OrderedGradientSum).
    const sum = new OrderedGradientSum(policy.weights, u.parts.length, { adding: false });
    const results: GradientResult[] = new Array(u.parts.length);
    let remaining = u.parts.length;
    let freed = false;
    const checkWorkerFree = () => {
      if (freed || remaining === 0 || remaining >= workers.size) return;
      freed = true;
      sum.startAdding();
      options.onWorkerFree?.();
    };
    try {
      const tasks = u.parts.map(async (part, i) => {
        const task: GradientTask = {
          examples: part,
          settings: u.settings,
          withStats: iteration === 0,
          old: old[i] ?? (config.old_logprobs === 'recompute' ? 'recompute' : undefined),
          ref: ref[i] ?? (refInWorkers ? 'compute' : undefined),
          out: outputs[i],
        };
        results[i] = await workers.run<GradientResult>('trainer.gradient', task);
        sum.add(i, results[i]);
        remaining--;
        checkWorkerFree();
      });
      checkWorkerFree(); // fewer tasks than workers: a core is free from the start
      await Promise.all(tasks);
    } catch (e) {
      sum.dispose();
      throw e;
    }
    const sums: IterationSums = { loss: 0, clipped: 0, ratioSum: 0, kl: 0 };
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      old[i] ??= r.old;
      ref[i] ??= r.ref;
      addSums(sums, r);
    }
    const grads = sum.take();
    if (!u.apply(iteration, grads, sums)) return u.stats(false);
  }
  return u.stats(true);
}

/**
 * One shared gradient buffer per micro-batch, kept with the worker pool and reused by every update (the workers
 * write into them; the sums are read from them). The gradients of an iteration are consumed (summed, turned into
 * tensors and applied) before the next iteration's tasks overwrite them; a pool runs one update at a time.
 */
const gradientBuffersOf = new WeakMap<PolicyWorkers, SharedArrayBuffer[]>();
function gradientBuffers(workers: PolicyWorkers, count: number, values: number): SharedArrayBuffer[] {
  let buffers = gradientBuffersOf.get(workers);
  if (!buffers || buffers[0]?.byteLength !== values * 4) gradientBuffersOf.set(workers, (buffers = []));
  while (buffers.length < count) buffers.push(new SharedArrayBuffer(values * 4));
  return buffers.slice(0, count);
}

function addSums(sums: IterationSums, r: IterationSums): void {
  sums.loss += r.loss;
  sums.clipped += r.clipped;
  sums.ratioSum += r.ratioSum;
  sums.kl += r.kl;
}
