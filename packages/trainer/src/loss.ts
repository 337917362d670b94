import * as tf from '@tensorflow/tfjs';

export type LossType = 'grpo' | 'dapo' | 'dr_grpo' | 'gspo';

export interface PolicyLossInputs {
  /** log pi_theta of each next token, [B, T-1] (differentiable). */
  logprobs: tf.Tensor2D;
  /** log pi_old of each next token (the sampler's), [B, T-1]; ignored where mask is 0. */
  oldLogprobs: tf.Tensor2D;
  /** log pi_ref of each next token, [B, T-1]; only read when beta > 0. */
  refLogprobs?: tf.Tensor2D;
  /** 1 on completion tokens, 0 on prompt and padding, [B, T-1]. */
  mask: tf.Tensor2D;
  /** Advantage of each sequence, [B]. */
  advantages: tf.Tensor1D;
  /** Lower and upper clip ranges: the ratio is kept in [1 - epsilonLow, 1 + epsilonHigh]. */
  epsilonLow: number;
  epsilonHigh: number;
  /** KL coefficient (k3 estimator). */
  beta: number;
  lossType: LossType;
  /**
   * Batch-wide normalizer, so that summing micro-batch losses gives the full-batch loss:
   * grpo and gspo: number of sequences; dapo: number of completion tokens;
   * dr_grpo: number of sequences x max completion length.
   */
  normalizer: number;
}

/** The batch-wide normalizer of each loss type (see PolicyLossInputs.normalizer). */
export function lossNormalizer(lossType: LossType, sequences: number, completionTokens: number, maxCompletionLength: number): number {
  switch (lossType) {
    case 'grpo':
    case 'gspo':
      return sequences;
    case 'dapo':
      return completionTokens;
    case 'dr_grpo':
      return sequences * maxCompletionLength;
  }
}

/**
 * The clipped policy-gradient surrogate with an optional KL penalty, per token:
 *   l_it = -min(rho A_i, clip(rho, 1 - eps_low, 1 + eps_high) A_i) + beta * k3_it
 *   rho  = exp(log pi_theta - log pi_old) per token (gspo: exp of the sequence's mean log-ratio)
 *   k3   = exp(log pi_ref - log pi_theta) - (log pi_ref - log pi_theta) - 1
 * aggregated by lossType:
 *   grpo:    sum_i (1/|o_i|) sum_t l_it / N            dapo: sum_i sum_t l_it / sum_i |o_i|
 *   dr_grpo: sum_i sum_t l_it / (N * L_max)           gspo: like grpo, with the sequence ratio
 */
export function policyLoss(inputs: PolicyLossInputs): tf.Scalar {
  return tf.tidy(() => {
    const { logprobs, oldLogprobs, mask, advantages, epsilonLow, epsilonHigh, beta, lossType, normalizer } = inputs;
    const lengths = tf.maximum(tf.sum(mask, 1), 1); // [B]
    const logRatio = tf.mul(tf.sub(logprobs, oldLogprobs), mask); // [B, T-1]
    const ratio = lossType === 'gspo'
      ? tf.mul(tf.expandDims(tf.exp(tf.div(tf.sum(logRatio, 1), lengths)), 1), tf.onesLike(mask)) // [B, T-1], one value per row
      : tf.exp(logRatio);
    const adv = tf.expandDims(advantages, 1); // [B, 1]
    const surrogate = tf.minimum(tf.mul(ratio, adv), tf.mul(tf.clipByValue(ratio, 1 - epsilonLow, 1 + epsilonHigh), adv));
    let perToken = tf.neg(surrogate);
    if (beta > 0) {
      if (!inputs.refLogprobs) throw new Error('policyLoss: beta > 0 needs refLogprobs');
      perToken = tf.add(perToken, tf.mul(klK3(logprobs, inputs.refLogprobs), beta));
    }
    perToken = tf.mul(perToken, mask);
    const summed = lossType === 'grpo' || lossType === 'gspo' ? tf.sum(tf.div(tf.sum(perToken, 1), lengths)) : tf.sum(perToken);
    return tf.div(summed, normalizer) as tf.Scalar;
  });
}

/** The k3 estimator of KL(pi_theta || pi_ref) per token: exp(r) - r - 1 with r = log pi_ref - log pi_theta. */
export function klK3(logprobs: tf.Tensor2D, refLogprobs: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const r = tf.sub(refLogprobs, logprobs);
    return tf.sub(tf.sub(tf.exp(r), r), 1) as tf.Tensor2D;
  });
}

/** Completion tokens whose ratio the clip changed (the surrogate took the clipped branch), and the ratio's sum. */
export function ratioStats(inputs: Pick<PolicyLossInputs, 'logprobs' | 'oldLogprobs' | 'mask' | 'advantages' | 'epsilonLow' | 'epsilonHigh' | 'lossType'>): { clipped: number; ratioSum: number } {
  return tf.tidy(() => {
    const { logprobs, oldLogprobs, mask, advantages, epsilonLow, epsilonHigh, lossType } = inputs;
    const logRatio = tf.mul(tf.sub(logprobs, oldLogprobs), mask);
    const lengths = tf.maximum(tf.sum(mask, 1), 1);
    const ratio = lossType === 'gspo'
      ? tf.mul(tf.expandDims(tf.exp(tf.div(tf.sum(logRatio, 1), lengths)), 1), tf.onesLike(mask))
      : tf.exp(logRatio);
    const adv = tf.expandDims(advantages, 1);
    const low = tf.logicalAnd(tf.less(ratio, 1 - epsilonLow), tf.less(adv, 0));
    const high = tf.logicalAnd(tf.greater(ratio, 1 + epsilonHigh), tf.greater(adv, 0));
    const clipped = tf.sum(tf.mul(tf.cast(tf.logicalOr(low, high), 'float32'), mask)).dataSync()[0]!;
    const ratioSum = tf.sum(tf.mul(ratio, mask)).dataSync()[0]!;
    return { clipped, ratioSum };
  });
}
