import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { groupAdvantages } from '../src/advantages.ts';
import { clippedTokenCount, grpoLoss } from '../src/loss.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Toy policy: one token drawn from softmax(theta) over a vocabulary of 2. */
function lossFor(theta: tf.Variable, tokens: number[], old: number[], advantages: number[], epsilon = 0.2) {
  const logp = tf.logSoftmax(theta); // [2]
  const taken = tf.stack(tokens.map((t) => logp.gather(t))).reshape([tokens.length, 1]) as tf.Tensor2D;
  return grpoLoss({
    logprobs: taken,
    oldLogprobs: tf.tensor2d(old, [old.length, 1]),
    mask: tf.ones([tokens.length, 1]) as tf.Tensor2D,
    advantages: tf.tensor1d(advantages),
    epsilon,
    totalSequences: tokens.length,
  });
}

describe('GRPO loss', () => {
  it('has the hand-computed gradient on a 2-sample toy case', () => {
    const theta = tf.variable(tf.tensor1d([0, 0]));
    const old = [Math.log(0.5), Math.log(0.5)];
    const { value, grads } = tf.variableGrads(() => lossFor(theta, [0, 1], old, [1, -1]), [theta]);
    // ratio = 1: loss = -(1/2)(A0 + A1) = 0; d/dtheta = -(1/2)(A0 (e0 - p) + A1 (e1 - p)) = [-0.5, 0.5]
    expect(value.dataSync()[0]).toBeCloseTo(0, 6);
    expect(Array.from(grads[theta.name]!.dataSync())).toEqual([expect.closeTo(-0.5, 6), expect.closeTo(0.5, 6)]);
  });

  it('matches finite differences away from ratio 1 and is zero where clipping is active', () => {
    const theta = tf.variable(tf.tensor1d([0.3, -0.2]));
    const old = [Math.log(0.45), Math.log(0.6)];
    const f = () => lossFor(theta, [0, 1], old, [0.7, -1.3]);
    const { grads } = tf.variableGrads(f, [theta]);
    const g = grads[theta.name]!.dataSync();
    const h = 1e-3;
    for (let i = 0; i < 2; i++) {
      const base = theta.dataSync().slice();
      const plus = base.slice(); plus[i]! += h;
      const minus = base.slice(); minus[i]! -= h;
      theta.assign(tf.tensor1d(plus)); const fp = f().dataSync()[0]!;
      theta.assign(tf.tensor1d(minus)); const fm = f().dataSync()[0]!;
      theta.assign(tf.tensor1d(base));
      expect(g[i]).toBeCloseTo((fp - fm) / (2 * h), 3);
    }
    // Sample 0 has ratio 0.5 / 0.2 = 2.5 > 1.2 with a positive advantage: clipped, no gradient.
    const clippedTheta = tf.variable(tf.tensor1d([0, 0]));
    const clipped = tf.variableGrads(() => lossFor(clippedTheta, [0], [Math.log(0.2)], [1]), [clippedTheta]);
    expect(Array.from(clipped.grads[clippedTheta.name]!.dataSync())).toEqual([0, 0]);
    expect(clippedTokenCount({
      logprobs: tf.tensor2d([[Math.log(0.5)]]), oldLogprobs: tf.tensor2d([[Math.log(0.2)]]), mask: tf.ones([1, 1]) as tf.Tensor2D,
      advantages: tf.tensor1d([1]), epsilon: 0.2,
    })).toBe(1);
  });

  it('averages tokens within a sequence, then over sequences, ignoring masked tokens', () => {
    const logprobs = tf.tensor2d([[-1, -2, -9], [-1, -1, -1]]);
    const loss = grpoLoss({
      logprobs, oldLogprobs: logprobs, mask: tf.tensor2d([[1, 1, 0], [1, 1, 1]]), advantages: tf.tensor1d([2, -1]), epsilon: 0.2, totalSequences: 4,
    });
    // ratio 1 everywhere: per-sequence surrogate = A; loss = -(2 - 1) / 4
    expect(loss.dataSync()[0]).toBeCloseTo(-0.25, 6);
  });
});

describe('GRPO advantages', () => {
  it('normalizes within the group with the sample std', () => {
    const a = groupAdvantages([0.5, 0.5, 0.25, 0.25], 0);
    const std = Math.sqrt((4 * 0.125 ** 2) / 3);
    expect(a).toEqual([0.125 / std, 0.125 / std, -0.125 / std, -0.125 / std].map((x) => expect.closeTo(x, 9)));
    expect(groupAdvantages([1, 1, 1], 1e-4)).toEqual([0, 0, 0]);
  });
});
