import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, parseConfig, type ClusterRow, type RolloutRow } from '@empo/core';
import { AdamW } from '../src/adamw.ts';
import { advantagesByRollout, groupAdvantages } from '../src/advantages.ts';
import { lossNormalizer, policyLoss, ratioStats, type LossType } from '../src/loss.ts';
import { buildExamples, policyUpdate } from '../src/update.ts';
import { tinyPolicy } from './helpers.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const sequences = [
  { ids: [1, 5, 6, 7, 8, 9, 2], promptLength: 3 },
  { ids: [1, 5, 10, 11, 2], promptLength: 3 },
  { ids: [1, 4, 12, 13, 14, 15, 16, 17, 2], promptLength: 2 },
];

/** Masks [B, T-1] for the completion tokens of `sequences`. */
function completionMask(): tf.Tensor2D {
  const width = Math.max(...sequences.map((s) => s.ids.length)) - 1;
  return tf.tensor2d(sequences.map((s) => Array.from({ length: width }, (_, t) => (t >= s.promptLength - 1 && t < s.ids.length - 1 ? 1 : 0))));
}

describe('policy-gradient losses on a tiny model', () => {
  for (const lossType of ['grpo', 'dapo', 'dr_grpo', 'gspo'] as LossType[]) {
    for (const beta of [0, 0.1]) {
      it(`${lossType}${beta ? ' with KL' : ''}: autodiff gradient equals finite differences`, () => {
        const policy = tinyPolicy(3);
        const rng = new Rng(11);
        const mask = completionMask();
        const ids = sequences.map((s) => s.ids);
        const base = tf.tidy(() => policy.sequenceLogprobs(ids));
        const noise = (scale: number) => tf.tensor2d(base.arraySync().map((row) => row.map(() => (rng.next() - 0.5) * scale)));
        const old = tf.tidy(() => tf.mul(tf.add(base, noise(0.3)), mask) as tf.Tensor2D);
        const ref = tf.tidy(() => tf.add(base, noise(0.5)) as tf.Tensor2D);
        const advantages = tf.tensor1d([0.8, -1.1, 0.4]);
        const completionTokens = mask.sum().dataSync()[0]!;
        const loss = () => policyLoss({
          logprobs: policy.sequenceLogprobs(ids), oldLogprobs: old, refLogprobs: ref, mask, advantages,
          epsilonLow: 0.2, epsilonHigh: 0.28, beta, lossType, normalizer: lossNormalizer(lossType, 3, completionTokens, 8),
        });
        const named = policy.namedVariables();
        const { grads } = tf.variableGrads(loss, [...named.values()]);
        const probes = [['model.embed_tokens.weight', 7 * 16 + 3], ['model.layers.0.mlp.down_proj.weight', 5], ['model.layers.0.self_attn.q_proj.weight', 40], ['model.norm.weight', 2]] as const;
        let checked = 0;
        for (const [name, index] of probes) {
          const v = named.get(name)!;
          const g = grads[v.name]!.dataSync()[index]!;
          const h = 3e-3;
          const values = v.dataSync().slice() as Float32Array;
          const at = (x: number) => {
            values[index] = x;
            v.assign(tf.tensor(values, v.shape));
            return tf.tidy(() => loss().dataSync()[0]!);
          };
          const x0 = values[index]!;
          const fd = (at(x0 + h) - at(x0 - h)) / (2 * h);
          at(x0);
          expect(Math.abs(g - fd), `${name}[${index}] autodiff ${g} vs finite difference ${fd}`).toBeLessThan(2e-3 + 0.05 * Math.abs(fd));
          if (Math.abs(fd) > 1e-4) checked++;
        }
        expect(checked).toBeGreaterThan(1); // the probes saw real, non-zero gradients
        policy.dispose();
      });
    }
  }

  it('aggregates as each loss type defines, on hand-computed values', () => {
    const logprobs = tf.tensor2d([[-1, -2, -9], [-1, -1, -1]]);
    const mask = tf.tensor2d([[1, 1, 0], [1, 1, 1]]);
    const common = { logprobs, oldLogprobs: logprobs, mask, advantages: tf.tensor1d([2, -1]), epsilonLow: 0.2, epsilonHigh: 0.2, beta: 0 };
    // ratio 1: per-token loss = -A_i; seq 0 has 2 tokens, seq 1 has 3.
    expect(policyLoss({ ...common, lossType: 'grpo', normalizer: 2 }).dataSync()[0]).toBeCloseTo(-(2 - 1) / 2, 6);
    expect(policyLoss({ ...common, lossType: 'dapo', normalizer: 5 }).dataSync()[0]).toBeCloseTo(-(2 * 2 - 3) / 5, 6);
    expect(policyLoss({ ...common, lossType: 'dr_grpo', normalizer: 2 * 4 }).dataSync()[0]).toBeCloseTo(-(2 * 2 - 3) / 8, 6);
    expect(policyLoss({ ...common, lossType: 'gspo', normalizer: 2 }).dataSync()[0]).toBeCloseTo(-(2 - 1) / 2, 6);
    // Separate clip bounds: ratio 1.25 with A > 0 is clipped at 1.2 (eps_high 0.2) but not at 1.28.
    const high = { logprobs: tf.tensor2d([[Math.log(1.25)]]), oldLogprobs: tf.tensor2d([[0]]), mask: tf.tensor2d([[1]]), advantages: tf.tensor1d([1]), lossType: 'grpo' as const };
    expect(ratioStats({ ...high, epsilonLow: 0.2, epsilonHigh: 0.2 }).clipped).toBe(1);
    expect(ratioStats({ ...high, epsilonLow: 0.2, epsilonHigh: 0.28 }).clipped).toBe(0);
  });
});

describe('GRPO advantages', () => {
  it('normalizes within the group with the sample std', () => {
    const a = groupAdvantages([0.5, 0.5, 0.25, 0.25], 0);
    const std = Math.sqrt((4 * 0.125 ** 2) / 3);
    expect(a).toEqual([0.125 / std, 0.125 / std, -0.125 / std, -0.125 / std].map((x) => expect.closeTo(x, 9)));
    expect(groupAdvantages([1, 1, 1], 1e-4)).toEqual([0, 0, 0]);
  });

  it('scales by group, batch or not at all, only over kept groups', () => {
    const row = (q: string, i: number, reward: number, keep = true): ClusterRow => ({
      step: 1, question_id: q, sample_index: i, answer: '1', cluster_id: 0, cluster_size: 1, reward, entropy: 0.5, keep,
    });
    const rows = [row('a', 0, 1), row('a', 1, 0), row('b', 0, 0.5), row('b', 1, 0.25), row('c', 0, 1, false), row('c', 1, 0, false)];
    expect(advantagesByRollout(rows, 0, 'none').get('b\u00000')).toBeCloseTo(0.125, 12);
    expect(advantagesByRollout(rows, 0, 'group').get('b\u00000')).toBeCloseTo(0.125 / Math.sqrt(0.125 ** 2 * 2), 9);
    const batchStd = Math.sqrt(([1, 0, 0.5, 0.25].reduce((s, r) => s + (r - 0.4375) ** 2, 0)) / 3);
    expect(advantagesByRollout(rows, 0, 'batch').get('a\u00000')).toBeCloseTo(0.5 / batchStd, 9);
    expect(advantagesByRollout(rows, 0, 'group').has('c\u00000')).toBe(false);
  });
});

describe('the update', () => {
  async function rolloutsFrom(policy: ReturnType<typeof tinyPolicy>, rewards: number[]) {
    const prompt = policy.encodePrompt('a=1 b=2+3 a+b=?\n');
    const out = policy.generate(rewards.map(() => prompt), { maxNewTokens: 6, temperature: 1, topP: 1, seed: 5 });
    const rollouts: RolloutRow[] = rewards.map((_, i) => ({
      step: 1, question_id: 'q', question: 'q', sample_index: i, prompt: '', completion: '', prompt_ids: prompt,
      completion_ids: out.tokens[i]!, logprobs: out.logprobs[i]!, finished: out.finished[i]!,
    }));
    const clusters: ClusterRow[] = rewards.map((reward, i) => ({
      step: 1, question_id: 'q', sample_index: i, answer: String(reward), cluster_id: 0, cluster_size: 1, reward, entropy: 0.5, keep: true,
    }));
    return { rollouts, clusters };
  }

  it('with zero advantages and beta = 0 leaves every weight unchanged', async () => {
    const policy = tinyPolicy(4);
    const config = parseConfig({}).trainer;
    const { rollouts, clusters } = await rolloutsFrom(policy, [0.5, 0.5, 0.5, 0.5]);
    const before = await policy.hostWeights();
    const optimizer = new AdamW(policy.namedVariables(), { learningRate: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
    const stats = policyUpdate(policy, optimizer, buildExamples(rollouts, clusters, config), config, { maxCompletionLength: 6 });
    expect(stats.gradNorm).toBe(0);
    const after = await policy.hostWeights();
    for (const [name, w] of before) expect(Array.from(after.get(name)!.data), name).toEqual(Array.from(w.data));
    optimizer.dispose();
    policy.dispose();
  });

  it('with one iteration the ratio is 1 and no token is clipped; the weights move', async () => {
    const policy = tinyPolicy(5);
    const config = parseConfig({ trainer: { micro_batch_size: 2 } }).trainer;
    const { rollouts, clusters } = await rolloutsFrom(policy, [1, 0, 0.25, 0.75, 0.5]);
    const before = await policy.hostWeights();
    const optimizer = new AdamW(policy.namedVariables(), { learningRate: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
    const stats = policyUpdate(policy, optimizer, buildExamples(rollouts, clusters, config), config, { maxCompletionLength: 6 });
    expect(stats.ratioMean).toBeCloseTo(1, 4);
    expect(stats.clipRatio).toBe(0);
    expect(stats.gradNorm).toBeGreaterThan(0);
    const after = await policy.hostWeights();
    const moved = [...before].some(([name, w]) => w.data.some((x, i) => x !== after.get(name)!.data[i]));
    expect(moved).toBe(true);
    optimizer.dispose();
    policy.dispose();
  });

  it('micro-batching gives the full-batch gradient', async () => {
    const policy = tinyPolicy(6);
    const { rollouts, clusters } = await rolloutsFrom(policy, [1, 0, 0.25, 0.75, 0.5]);
    const norms = [1, 2, 5].map((micro) => {
      const config = parseConfig({ trainer: { micro_batch_size: micro, learning_rate: 1e-12 } }).trainer;
      const optimizer = new AdamW(policy.namedVariables(), { learningRate: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
      const stats = policyUpdate(policy, optimizer, buildExamples(rollouts, clusters, config), config, { maxCompletionLength: 6 });
      optimizer.dispose();
      return stats.gradNorm;
    });
    expect(norms[0]).toBeCloseTo(norms[2]!, 5);
    expect(norms[1]).toBeCloseTo(norms[2]!, 5);
    policy.dispose();
  });
});

describe('non-finite values', () => {
  it('stop the step with a clear message and leave the weights untouched', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { RunLayout } = await import('@empo/core');
    const { TrainerSession } = await import('../src/session.ts');
    const dir = mkdtempSync(join(tmpdir(), 'empo-nan-'));
    const policy = tinyPolicy(8);
    await policy.save(join(dir, 'base'));
    const config = parseConfig({ runs_dir: join(dir, 'runs'), model: join(dir, 'base'), backend: 'cpu' });
    const layout = RunLayout.fromConfig(config);
    const session = await TrainerSession.open(config, layout, 0);
    const prompt = policy.encodePrompt('a=1 b=2+3 a+b=?\n');
    const rollouts: RolloutRow[] = [0, 1].map((i) => ({
      step: 1, question_id: 'q', question: 'q', sample_index: i, prompt: '', completion: '', prompt_ids: prompt,
      completion_ids: [5, 6], logprobs: [Number.NaN, -1], finished: true,
    }));
    const clusters: ClusterRow[] = [1, 0].map((reward, i) => ({
      step: 1, question_id: 'q', sample_index: i, answer: String(i), cluster_id: i, cluster_size: 1, reward, entropy: 0.6, keep: true,
    }));
    const before = await session.policy.hostWeights();
    expect(() => session.train(rollouts, clusters)).toThrow(/non-finite loss or gradient.*no update was applied and the last good checkpoint \(step 0\) is kept/);
    const after = await session.policy.hostWeights();
    for (const [name, w] of before) expect(Array.from(after.get(name)!.data), name).toEqual(Array.from(w.data));
    expect(layout.checkpointSteps()).toEqual([]);
    session.dispose();
    policy.dispose();
  });
});
