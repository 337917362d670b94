import * as tf from '@tensorflow/tfjs';

export interface PolicyLossInputs {
  /** log pi_theta of each next token, [B, T-1] (differentiable). */
  logprobs: tf.Tensor2D;
  /** log pi_old of each next token (the sampler's), [B, T-1]; 0 where mask is 0. */
  oldLogprobs: tf.Tensor2D;
  /** 1 on completion tokens, 0 on prompt and padding, [B, T-1]. */
  mask: tf.Tensor2D;
  /** Advantage of each sequence, [B]. */
  advantages: tf.Tensor1D;
  /** PPO clip range. */
  epsilon: number;
  /** Sequences in the whole batch (all micro-batches): the GRPO mean over sequences divides by it. */
  totalSequences: number;
}

/**
 * The GRPO clipped surrogate, averaged over tokens within each sequence, then over sequences:
 *   loss = -1/N sum_i 1/|o_i| sum_t min(rho_it A_i, clip(rho_it, 1-eps, 1+eps) A_i),
 *   rho_it = exp(log pi_theta - log pi_old).
 * Computed per micro-batch with the batch-wide N, so summing micro-batch gradients gives
 * exactly the full-batch gradient.
 */
export function grpoLoss(inputs: PolicyLossInputs): tf.Scalar {
  return tf.tidy(() => {
    const { logprobs, oldLogprobs, mask, advantages, epsilon, totalSequences } = inputs;
    const ratio = tf.exp(tf.mul(tf.sub(logprobs, oldLogprobs), mask)); // [B, T-1]
    const adv = tf.expandDims(advantages, 1); // [B, 1]
    const unclipped = tf.mul(ratio, adv);
    const clipped = tf.mul(tf.clipByValue(ratio, 1 - epsilon, 1 + epsilon), adv);
    const perToken = tf.mul(tf.minimum(unclipped, clipped), mask);
    const lengths = tf.maximum(tf.sum(mask, 1), 1); // [B]
    const perSequence = tf.div(tf.sum(perToken, 1), lengths);
    return tf.div(tf.neg(tf.sum(perSequence)), totalSequences) as tf.Scalar;
  });
}

/** Share of completion tokens whose ratio the clip changed (the surrogate took the clipped branch). */
export function clippedTokenCount(inputs: Omit<PolicyLossInputs, 'totalSequences'>): number {
  return tf.tidy(() => {
    const { logprobs, oldLogprobs, mask, advantages, epsilon } = inputs;
    const ratio = tf.exp(tf.mul(tf.sub(logprobs, oldLogprobs), mask));
    const adv = tf.expandDims(advantages, 1);
    const low = tf.logicalAnd(tf.less(ratio, 1 - epsilon), tf.less(adv, 0));
    const high = tf.logicalAnd(tf.greater(ratio, 1 + epsilon), tf.greater(adv, 0));
    return tf.sum(tf.mul(tf.cast(tf.logicalOr(low, high), 'float32'), mask)).dataSync()[0]!;
  });
}
