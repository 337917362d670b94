/**
 * The update on worker threads (policyUpdateParallel, 2 workers) gives the same weights, AdamW moments and
 * statistics as the update in this thread (policyUpdate), bit for bit; and neither leaks tensors across steps.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type ClusterRow, type RolloutRow } from '@empo/core';
import { PolicyWorkers, useBackend, type Policy } from '@empo/policy';
import { AdamW } from '../src/adamw.ts';
import { microBatchRanges, microBatches } from '../src/gradient.ts';
import { OrderedGradientSum } from '../src/gradient-sum.ts';
import { buildExamples, policyUpdate, policyUpdateParallel, type UpdateStats } from '../src/update.ts';
import { trainerTaskModule, type GradientResult } from '../src/worker-tasks.ts';
import { tinyPolicy } from './helpers.ts';

let workers: PolicyWorkers;

beforeAll(async () => {
  await useBackend('wasm');
  const p = tinyPolicy(11, 32);
  workers = await PolicyWorkers.start({ workers: 2, backend: 'wasm', model: p, taskModules: [trainerTaskModule] });
  p.dispose();
});

afterAll(async () => {
  await workers.close();
});

/** Two questions x 5 samples from `policy`, with rewards that give non-zero advantages. */
function batch(policy: Policy, seed: number): { rollouts: RolloutRow[]; clusters: ClusterRow[] } {
  const rewards = [[1, 0, 0.25, 0.75, 0.5], [0, 0, 1, 0.5, 1]];
  const rollouts: RolloutRow[] = [];
  const clusters: ClusterRow[] = [];
  rewards.forEach((rs, q) => {
    const prompt = policy.encodePrompt(q === 0 ? 'a=1 b=2+3 a+b=?\n' : 'a=4 b=7 b-a=?\n');
    const out = policy.generate(rs.map(() => prompt), { maxNewTokens: 8, temperature: 1, topP: 1, seed: seed + q });
    rs.forEach((reward, i) => {
      rollouts.push({
        step: 1, question_id: `q${q}`, question: 'q', sample_index: i, prompt: '', completion: '', prompt_ids: prompt,
        completion_ids: out.tokens[i]!, logprobs: out.logprobs[i]!, finished: out.finished[i]!,
      });
      clusters.push({ step: 1, question_id: `q${q}`, sample_index: i, answer: String(reward), cluster_id: 0, cluster_size: 1, reward, entropy: 0.5, keep: true });
    });
  });
  return { rollouts, clusters };
}

async function state(policy: Policy, optimizer: AdamW): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, w] of await policy.hostWeights()) out.set(name, w.data as Float32Array);
  for (const [name, t] of optimizer.stateTensors()) out.set(name, (await t.data()) as Float32Array);
  return out;
}

const withoutTime = (s: UpdateStats) => ({ ...s, seconds: 0 });

describe('micro-batches', () => {
  it('are a fixed, balanced partition into an even number of parts', () => {
    expect(microBatchRanges(0, 32)).toEqual([]);
    expect(microBatchRanges(104, 32)).toEqual([[0, 26], [26, 52], [52, 78], [78, 104]]);
    expect(microBatchRanges(72, 32)).toEqual([[0, 18], [18, 36], [36, 54], [54, 72]]);
    expect(microBatchRanges(20, 32)).toEqual([[0, 10], [10, 20]]);
    expect(microBatchRanges(1, 32)).toEqual([[0, 1]]);
    expect(microBatchRanges(10, 3)).toEqual([[0, 3], [3, 6], [6, 8], [8, 10]]);
  });

  it('hold the longest sequences first (the order workers take them in and their gradients are summed in)', () => {
    const lengths = [3, 9, 5, 9, 1, 7, 5, 2];
    const parts = microBatches(lengths.map((n, i) => ({ ids: new Array<number>(n).fill(i) })), 3);
    // ties keep their order: the two 9s as given (examples 1 then 3), the two 5s (2 then 6)
    expect(parts.map((p) => p.map((e) => e.ids[0]))).toEqual([[1, 3], [5, 2], [6, 0], [7, 4]]);
  });
});

describe('OrderedGradientSum', () => {
  const weights = new Map<string, tf.Tensor>([['a', tf.zeros([2, 3])], ['b', tf.zeros([5])]]);
  const names = ['b', 'a']; // a worker's order need not be the map's
  /** Random gradients whose float32 sum depends on the order of the adds. */
  const results: GradientResult[] = Array.from({ length: 5 }, (_, i) => ({
    loss: 0, clipped: 0, ratioSum: 0, kl: 0, names,
    grads: Float32Array.from({ length: 11 }, (_, k) => Math.sin(i * 11 + k) * 10 ** ((k + i) % 7 - 3)),
  }));
  /** ((g0 + g1) + g2) + ..., per value, in float32. */
  const expected = (name: string) => {
    const [at, size] = name === 'b' ? [0, 5] : [5, 6];
    const out = new Float32Array(size);
    for (const r of results) for (let k = 0; k < size; k++) out[k] = Math.fround(out[k]! + r.grads[at + k]!);
    return out;
  };

  it('adds in micro-batch order whatever order the gradients arrive in, without leaking tensors', async () => {
    for (const arrival of [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3]]) {
      const count = tf.memory().numTensors;
      const sum = new OrderedGradientSum(weights, results.length);
      for (const i of arrival) sum.add(i, results[i]!);
      const grads = sum.take();
      expect(tf.memory().numTensors - count).toBe(2);
      for (const name of ['a', 'b']) {
        expect(grads.get(name)!.shape).toEqual(weights.get(name)!.shape);
        expect(Buffer.from((await grads.get(name)!.data()).buffer).equals(Buffer.from(expected(name).buffer)), `${name}, arrival ${arrival}`).toBe(true);
      }
      tf.dispose([...grads.values()]);
    }
  });

  it('refuses a gradient twice, an index out of range, an unknown weight, and a sum with one missing', () => {
    const sum = new OrderedGradientSum(weights, 3);
    sum.add(1, results[1]!);
    expect(() => sum.add(1, results[1]!)).toThrow(/micro-batch 1 added twice/);
    expect(() => sum.add(3, results[3]!)).toThrow(/micro-batch 3 out of 0..2/);
    sum.add(0, results[0]!);
    expect(() => sum.add(0, results[0]!)).toThrow(/micro-batch 0 added twice/);
    expect(() => sum.take()).toThrow(/2 of 3 micro-batch gradients added/);
    expect(() => sum.add(2, { ...results[2]!, names: ['a', 'b'] })).toThrow(/workers disagree on the weight order/);
    sum.dispose();
    const other = new OrderedGradientSum(weights, 1);
    expect(() => other.add(0, { ...results[0]!, names: ['b', 'c'] })).toThrow(/gradient for c, which the policy does not have/);
  });

  it('with adding off, holds the gradients until startAdding or take, then gives the same bits', async () => {
    for (const start of [2, 5]) {
      const count = tf.memory().numTensors;
      const sum = new OrderedGradientSum(weights, results.length, { adding: false });
      [3, 0, 1, 4, 2].forEach((i, k) => {
        if (k === start) sum.startAdding();
        sum.add(i, results[i]!);
        if (k < start) expect(tf.memory().numTensors, `nothing added before startAdding (arrival ${k})`).toBe(count);
      });
      const grads = sum.take();
      for (const name of ['a', 'b']) expect(Buffer.from((await grads.get(name)!.data()).buffer).equals(Buffer.from(expected(name).buffer))).toBe(true);
      tf.dispose([...grads.values()]);
      expect(tf.memory().numTensors).toBe(count);
    }
  });

  it('after dispose (a task failed) drops its partial sum and ignores late gradients', () => {
    const count = tf.memory().numTensors;
    const sum = new OrderedGradientSum(weights, 2);
    sum.add(0, results[0]!);
    sum.dispose();
    expect(tf.memory().numTensors).toBe(count);
    sum.add(1, results[1]!);
    expect(tf.memory().numTensors).toBe(count);
    expect(() => sum.take()).toThrow(/gradients added/);
  });
});

describe('policyUpdateParallel', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['grpo, 2 iterations, recomputed old log-probs', { micro_batch_size: 3, num_iterations: 2, old_logprobs: 'recompute' }],
    ['dapo with a KL term (reference log-probs on the workers)', { micro_batch_size: 4, loss_type: 'dapo', beta: 0.05, weight_decay: 0.01 }],
  ];
  for (const [name, trainer] of cases) {
    it(`${name}: the same weights, optimizer state and stats as policyUpdate, for 3 steps`, async () => {
      const config = parseConfig({ trainer }).trainer;
      const a = tinyPolicy(12, 32);
      const b = a.clone();
      const reference = config.beta > 0 ? a.clone() : undefined;
      const adam = () => ({ learningRate: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: config.weight_decay });
      const optA = new AdamW(a.namedVariables(), adam());
      const optB = new AdamW(b.namedVariables(), adam());
      for (let step = 1; step <= 3; step++) {
        const { rollouts, clusters } = batch(a, 100 * step);
        const examples = buildExamples(rollouts, clusters, config);
        const countA = tf.memory().numTensors;
        const sa = policyUpdate(a, optA, examples, config, { maxCompletionLength: 8, reference });
        expect(tf.memory().numTensors, 'policyUpdate leaks').toBe(countA);
        const sb = await policyUpdateParallel(b, optB, examples, config, { maxCompletionLength: 8, reference, workers });
        expect(tf.memory().numTensors, 'policyUpdateParallel leaks').toBe(countA);
        expect(withoutTime(sb)).toEqual(withoutTime(sa));
        const [wa, wb] = [await state(a, optA), await state(b, optB)];
        for (const [k, v] of wa) expect(Buffer.from(wb.get(k)!.buffer).equals(Buffer.from(v.buffer)), `${k} after step ${step}`).toBe(true);
      }
      optA.dispose();
      optB.dispose();
      a.dispose();
      b.dispose();
      reference?.dispose();
    });
  }
});

describe('policyUpdateParallel onWorkerFree', () => {
  it('is called once per iteration, as soon as fewer gradient tasks remain than workers', async () => {
    const p = tinyPolicy(14, 32);
    const { rollouts, clusters } = batch(p, 9);
    const run = async (trainer: Record<string, unknown>, parts: number): Promise<number[]> => {
      const config = parseConfig({ trainer }).trainer;
      const examples = buildExamples(rollouts, clusters, config);
      expect(microBatches(examples, config.micro_batch_size)).toHaveLength(parts);
      const optimizer = new AdamW(p.namedVariables(), { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
      workers.recordTasks();
      workers.takeTaskLog();
      let finished = 0;
      const calls: number[] = []; // gradient tasks finished at each call
      const onWorkerFree = () => calls.push((finished += workers.takeTaskLog().filter((t) => t.task === 'trainer.gradient').length));
      try {
        await policyUpdateParallel(p, optimizer, examples, config, { maxCompletionLength: 8, workers, onWorkerFree });
      } finally {
        workers.recordTasks(false);
        optimizer.dispose();
      }
      return calls;
    };
    // 4 micro-batches on 2 workers: after the third, one worker has nothing left; again in the second iteration
    expect(await run({ micro_batch_size: 3, num_iterations: 2 }, 4)).toEqual([3, 7]);
    // 2 micro-batches: after the first
    expect(await run({ micro_batch_size: 32 }, 2)).toEqual([1]);
    p.dispose();
  });
});

describe('the trainer.gradient worker task', () => {
  it('writes the gradient into the shared buffer it is given (the same values as a new array), and refuses one too small', async () => {
    const config = parseConfig({}).trainer;
    const p = tinyPolicy(13, 32);
    const { rollouts, clusters } = batch(p, 7);
    const examples = buildExamples(rollouts, clusters, config);
    const settings = { epsilonLow: 0.2, epsilonHigh: 0.2, beta: 0, lossType: 'grpo' as const, normalizer: examples.length };
    const size = [...p.weights.values()].reduce((n, v) => n + v.size, 0);
    await workers.syncWeights(p.weights);
    const fresh = await workers.run<GradientResult>('trainer.gradient', { examples, settings, withStats: true });
    const out = new SharedArrayBuffer(size * 4 + 64);
    const shared = await workers.run<GradientResult>('trainer.gradient', { examples, settings, withStats: true, out });
    expect(shared.grads.length).toBe(size);
    expect(Buffer.from(new Uint8Array(out, 0, size * 4)).equals(Buffer.from(fresh.grads.buffer))).toBe(true);
    new Float32Array(out)[0] = 12345; // the result is a view of the caller's memory, not a copy
    expect(shared.grads[0]).toBe(12345);
    expect(shared.loss).toBe(fresh.loss);
    await expect(workers.run('trainer.gradient', { examples, settings, withStats: true, out: new SharedArrayBuffer(8) })).rejects.toThrow(
      new RegExp(`the output buffer holds 2 values, the gradient ${size}`),
    );
    p.dispose();
  });
});
