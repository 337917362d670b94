/**
 * PolicyWorkers: generation split across worker threads (each with its own wasm backend) gives exactly what
 * one generate() call gives, whatever the number of workers; weights follow the parent's; errors come back;
 * close() ends the threads. Also: splitting a batch by hand with rowSeeds/padTo is exact (in this thread).
 */
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@empo/core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PolicyWorkers, rowSeeds, splitRuns, type Policy } from '../src/index.ts';
import { sharpPolicy, withBackend } from './helpers.ts';

let policy: Policy;
let workers: PolicyWorkers;

beforeAll(async () => {
  await withBackend('wasm');
  policy = sharpPolicy({ seed: 41, numHeads: 4, numKvHeads: 2 });
  workers = await PolicyWorkers.start({ workers: 2, backend: 'wasm', model: policy, taskModules: [new URL('./decode-steps-task.ts', import.meta.url)] });
});

afterAll(async () => {
  await workers.close();
  policy.dispose();
});

/** G samples of prompts of different lengths (so padding matters), in runs of equal prompts. */
function groups(p: Policy, G = 5): number[][] {
  return ['what is 12+30?', '1+1=', 'x=7, y=8, x*y=', 'abc'].flatMap((s) => Array.from({ length: G }, () => p.encodePrompt(s)));
}

const OPTS = { maxNewTokens: 24, temperature: 1, topP: 0.95 };

describe('splitting a batch', () => {
  test('parts with their rows\' seeds and the batch\'s padded length reproduce the whole batch exactly', () => {
    const prompts = groups(policy);
    const whole = policy.generate(prompts, { ...OPTS, seed: 3 });
    const seeds = rowSeeds(3, prompts.length);
    const padTo = Math.max(...prompts.map((p) => p.length));
    const parts = [[0, 3], [3, 11], [11, 20]].map(([a, b]) => policy.generate(prompts.slice(a, b), { ...OPTS, rowSeeds: seeds.slice(a, b), padTo }));
    expect(parts.flatMap((r) => r.tokens)).toEqual(whole.tokens);
    expect(parts.flatMap((r) => r.logprobs)).toEqual(whole.logprobs);
    expect(parts.flatMap((r) => r.finished)).toEqual(whole.finished);
  });

  test('splitRuns cuts between runs of equal prompts into about equal parts', () => {
    const p = (id: number) => [id];
    expect(splitRuns([p(1), p(1), p(2), p(2), p(3), p(3), p(4), p(4)], 2)).toEqual([[0, 4], [4, 8]]);
    expect(splitRuns([p(1), p(1), p(1), p(1)], 2)).toEqual([[0, 2], [2, 4]]);
    expect(splitRuns([p(1), p(2), p(3)], 4).flat().at(-1)).toBe(3);
    expect(splitRuns([], 2)).toEqual([]);
  });
});

describe('PolicyWorkers', () => {
  test('generate on 2 workers equals generate in this thread, bit for bit, and advances an Rng the same way', async () => {
    const prompts = groups(policy);
    const r1 = new Rng(9);
    const r2 = new Rng(9);
    const local = policy.generate(prompts, { ...OPTS, seed: r1 });
    const pooled = await workers.generate(policy, prompts, { ...OPTS, seed: r2 });
    expect(pooled).toEqual(local);
    expect(r2.state()).toEqual(r1.state());
    const greedy = await workers.generate(policy, prompts, { maxNewTokens: 10, temperature: 0 });
    expect(greedy).toEqual(policy.generate(prompts, { maxNewTokens: 10, temperature: 0 }));
  });

  test('the workers decode with DirectDecoder, as this thread does', async () => {
    const steps = () => Promise.all([0, 1].map(() => workers.run<number>('test.directDecodeSteps', {})));
    const before = (await steps()).reduce((a, b) => a + b, 0);
    await workers.generate(policy, groups(policy), { ...OPTS, seed: 4, stopAtEos: false });
    const after = (await steps()).reduce((a, b) => a + b, 0);
    expect(after - before).toBe(2 * (OPTS.maxNewTokens - 1)); // each worker's part: one step per token after the first
  });

  test('workers use the parent\'s current weights', async () => {
    const prompts = groups(policy, 2);
    const before = await workers.generate(policy, prompts, { ...OPTS, seed: 5 });
    const v = policy.namedVariables().get('model.norm.weight')!;
    const saved = v.clone();
    tf.tidy(() => v.assign(tf.mul(v, -3)));
    try {
      const after = await workers.generate(policy, prompts, { ...OPTS, seed: 5 });
      expect(after).toEqual(policy.generate(prompts, { ...OPTS, seed: 5 }));
      expect(after.logprobs).not.toEqual(before.logprobs);
    } finally {
      v.assign(saved);
      saved.dispose();
    }
    expect(await workers.generate(policy, prompts, { ...OPTS, seed: 5 })).toEqual(before);
  });

  test('a failing task rejects with its error; the pool keeps working', async () => {
    await expect(workers.run('no-such-task', {})).rejects.toThrow(/unknown task 'no-such-task'/);
    await expect(workers.generate(policy, [[]], { ...OPTS, seed: 1 })).rejects.toThrow(/prompt 0 is empty/);
    const prompts = groups(policy, 1);
    expect(await workers.generate(policy, prompts, { ...OPTS, seed: 1 })).toEqual(policy.generate(prompts, { ...OPTS, seed: 1 }));
  });

  test('busyMs counts the time some task was queued or running, not the idle time between', async () => {
    const prompts = groups(policy, 2);
    const before = workers.busyMs;
    const t0 = performance.now();
    await Promise.all([workers.generate(policy, prompts, { ...OPTS, seed: 3 }), workers.generate(policy, prompts, { ...OPTS, seed: 4 })]);
    const wall = performance.now() - t0;
    const busy = workers.busyMs - before;
    expect(busy).toBeGreaterThan(0);
    expect(busy).toBeLessThanOrEqual(wall + 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(workers.busyMs - before).toBeCloseTo(busy, 6); // idle: no growth
  });

  test('taskMsByThread counts each thread\'s own task time: one task grows one thread, two at once grow both', async () => {
    const prompts = groups(policy, 2);
    const opts = { ...OPTS, seed: 5 };
    const before = workers.taskMsByThread;
    expect(before).toHaveLength(2);
    const t0 = performance.now();
    await workers.run('generate', { prompts, opts });
    const oneWall = performance.now() - t0;
    const afterOne = workers.taskMsByThread;
    const grew = afterOne.map((ms, i) => ms - before[i]!);
    expect(grew.filter((g) => g > 0)).toHaveLength(1); // the task ran on one thread only
    expect(Math.max(...grew)).toBeLessThanOrEqual(oneWall + 1);

    const t1 = performance.now();
    await Promise.all([workers.run('generate', { prompts, opts }), workers.run('generate', { prompts, opts })]);
    const twoWall = performance.now() - t1;
    const afterTwo = workers.taskMsByThread;
    for (const [i, ms] of afterTwo.entries()) {
      expect(ms - afterOne[i]!).toBeGreaterThan(0);
      expect(ms - afterOne[i]!).toBeLessThanOrEqual(twoWall + 1);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(workers.taskMsByThread).toEqual(afterTwo); // idle: no growth
  });

  test('takeTaskLog lists each finished task with its thread and times once recordTasks is on, and clears', async () => {
    const prompts = groups(policy, 2);
    const opts = { ...OPTS, seed: 6 };
    await workers.run('generate', { prompts, opts });
    expect(workers.takeTaskLog()).toEqual([]); // not recording

    workers.recordTasks();
    const t0 = performance.now();
    await Promise.all([workers.run('generate', { prompts, opts }), workers.run('generate', { prompts, opts })]);
    await expect(workers.run('no-such-task', {})).rejects.toThrow(/unknown task/);
    const t1 = performance.now();
    const log = workers.takeTaskLog();
    expect(log.map((r) => [r.task, r.failed])).toEqual([['generate', false], ['generate', false], ['no-such-task', true]]);
    expect(new Set(log.slice(0, 2).map((r) => r.thread))).toEqual(new Set([0, 1])); // one on each thread
    for (const r of log) {
      expect(r.start).toBeGreaterThanOrEqual(t0);
      expect(r.end).toBeGreaterThanOrEqual(r.start);
      expect(r.end).toBeLessThanOrEqual(t1);
    }
    expect(log[2]!.start).toBeGreaterThanOrEqual(Math.max(log[0]!.end, log[1]!.end) - 1); // handed out after both
    expect(workers.takeTaskLog()).toEqual([]); // taken: cleared

    workers.recordTasks(false);
    await workers.run('generate', { prompts, opts });
    expect(workers.takeTaskLog()).toEqual([]);
  });

  test.runIf(process.platform === 'linux')('osThreadIds names each worker\'s own thread of this process (Linux)', () => {
    const ids = workers.osThreadIds;
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
    for (const tid of ids) {
      expect(Number.isInteger(tid)).toBe(true);
      expect(tid).not.toBe(process.pid); // not the parent's (main) thread
      expect(existsSync(`/proc/self/task/${tid}`)).toBe(true);
    }
  });

  test('close() ends the threads; later calls fail', async () => {
    const pool = await PolicyWorkers.start({ workers: 1, backend: 'wasm', model: policy });
    await pool.close();
    await expect(pool.run('generate', {})).rejects.toThrow(/closed/);
  });
});
