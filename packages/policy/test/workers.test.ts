/**
 * PolicyWorkers: generation split across worker threads (each with its own wasm backend) gives exactly what
 * one generate() call gives, whatever the number of workers; weights follow the parent's; errors come back;
 * close() ends the threads; rows handed over between workers mid-way decode on to the same tokens. Also:
 * splitting a batch by hand with rowSeeds/padTo, and handing rows over with resumeGenerate, is exact (in this
 * thread).
 */
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@empo/core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { generate, PolicyWorkers, resumeGenerate, rowSeeds, splitRuns, type GenerateOptions, type GenerateResult, type HandoffControl, type Policy, type RowHandoff } from '../src/index.ts';
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

  /**
   * `call` with a control that asks for rows at the polls numbered in `asks` (one poll per token step); each
   * handoff finished by resumeGenerate (asking again at its first poll while `depth` > 0). Returns the merged
   * result, and counts the handoffs and the rows that went on decoding after one.
   */
  function withHandoffs(call: (c: HandoffControl) => GenerateResult, asks: number[], depth: number, seen: { handoffs: number; continued: number }): GenerateResult {
    const handoffs: RowHandoff[] = [];
    let polls = 0;
    const r = call({ poll: () => asks.includes(polls++), send: (h) => handoffs.push(h) });
    const out: GenerateResult = { tokens: r.tokens.map((t) => [...t]), logprobs: r.logprobs.map((l) => [...l]), finished: [...r.finished] };
    for (const h of handoffs) {
      seen.handoffs++;
      const rest = withHandoffs((c) => resumeGenerate(policy, h, c), depth > 0 ? [0] : [], depth - 1, seen);
      h.rows.forEach((row, j) => {
        expect(out.finished[row]).toBe(false); // the handing call reports a row it handed over unfinished
        if (rest.tokens[j]!.length > 0) seen.continued++;
        out.tokens[row]!.push(...rest.tokens[j]!);
        out.logprobs[row]!.push(...rest.logprobs[j]!);
        out.finished[row] = rest.finished[j]!;
      });
    }
    return out;
  }

  test('rows handed over mid-way and decoded on by resumeGenerate give exactly the tokens of one call', () => {
    const prompts = groups(policy, 4); // 16 rows, prompts of different lengths
    const cases: [GenerateOptions, number[], number][] = [
      [{ ...OPTS, maxNewTokens: 40, seed: 7 }, [0], 0], // right after the prefill: no recent cache segment yet
      [{ ...OPTS, maxNewTokens: 48, seed: 8, stopAtEos: false }, [5], 2], // mid-segment, and handed on twice more
      [{ maxNewTokens: 40, temperature: 0, stopAtEos: false }, [18], 1], // after a segment merge (16 positions), greedy
      [{ ...OPTS, maxNewTokens: 40, seed: 9, stopAtEos: false }, [3, 20], 0], // twice from the same call
    ];
    for (const [opts, asks, depth] of cases) {
      const whole = policy.generate(prompts, opts);
      const seen = { handoffs: 0, continued: 0 };
      const merged = withHandoffs((c) => generate(policy, prompts, opts, c), asks, depth, seen);
      expect(merged).toEqual(whole);
      expect(seen.handoffs).toBeGreaterThanOrEqual(asks.length + depth);
      expect(seen.continued).toBeGreaterThan(0);
    }
  });

  test('no handover with fewer than two running rows or too few steps left; a bad handoff is refused', () => {
    const prompts = groups(policy, 1).slice(0, 1);
    const sent: RowHandoff[] = [];
    generate(policy, prompts, { ...OPTS, seed: 1 }, { poll: () => true, send: (h) => sent.push(h) });
    expect(sent).toEqual([]); // one row
    const two = groups(policy, 2);
    const r = generate(policy, two, { ...OPTS, maxNewTokens: 4, seed: 1, stopAtEos: false }, { poll: () => true, send: (h) => sent.push(h) });
    expect(sent).toEqual([]); // 4 new tokens: never 4 steps left after a sampled token
    expect(r.tokens.every((t) => t.length === 4)).toBe(true);
    let handoff: RowHandoff | undefined;
    let asked = false;
    generate(policy, two, { ...OPTS, seed: 2 }, { poll: () => !asked && (asked = true), send: (h) => (handoff = h) });
    expect(handoff).toBeDefined();
    const cut = { ...handoff!, cache: { ...handoff!.cache, data: handoff!.cache.data.subarray(1) } };
    expect(() => resumeGenerate(policy, cut)).toThrow(/DirectDecoder.resume: \d+ cached values for \d+ rows, expected/);
    expect(() => resumeGenerate(policy, { ...handoff!, next: [] })).toThrow(/resumeGenerate: the handoff's per-row fields/);
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

  test('rows handed over between the workers (every task hands over at its first chance) give the same bits', async () => {
    const prompts = groups(policy, 6);
    for (const opts of [{ ...OPTS, maxNewTokens: 30, seed: 12 }, { maxNewTokens: 40, temperature: 0, stopAtEos: false }]) {
      const local = policy.generate(prompts, opts);
      workers.recordTasks();
      expect(await workers.generate(policy, prompts, opts, 'always')).toEqual(local);
      const tasks = workers.takeTaskLog().map((t) => t.task);
      expect(tasks.filter((t) => t === 'generate')).toHaveLength(2);
      expect(tasks.filter((t) => t === 'generate.resume').length).toBeGreaterThanOrEqual(4); // handed on and on
      expect(await workers.generate(policy, prompts, opts, 'off')).toEqual(local);
      expect(workers.takeTaskLog().map((t) => t.task)).toEqual(['generate', 'generate']);
      workers.recordTasks(false);
    }
  });

  test('the workers decode with DirectDecoder, as this thread does', async () => {
    const steps = () => Promise.all([0, 1].map(() => workers.run<number>('test.directDecodeSteps', {})));
    const before = (await steps()).reduce((a, b) => a + b, 0);
    await workers.generate(policy, groups(policy), { ...OPTS, seed: 4, stopAtEos: false }, 'off');
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

  test('a weight sync that fails in a worker fails the tasks after it, until a sync succeeds', async () => {
    const pool = await PolicyWorkers.start({ workers: 1, backend: 'wasm', model: policy, taskModules: [new URL('./decode-steps-task.ts', import.meta.url)] });
    try {
      const prompts = groups(policy, 1);
      const expected = policy.generate(prompts, { ...OPTS, seed: 3 });
      expect(await pool.generate(policy, prompts, { ...OPTS, seed: 3 })).toEqual(expected);
      // syncWeights does not wait for the worker: a tensor of the wrong shape fails there, at its copy.
      const bad = new Map(policy.weights);
      const wrong = tf.zeros([3]);
      bad.set('model.norm.weight', wrong);
      await pool.syncWeights(bad);
      await expect(pool.run('test.directDecodeSteps', {})).rejects.toThrow(/not run: the weights' last sync failed/);
      expect(await pool.generate(policy, prompts, { ...OPTS, seed: 3 })).toEqual(expected); // synced again, then run
      wrong.dispose();
    } finally {
      await pool.close();
    }
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
