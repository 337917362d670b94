import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { RunLayout, log, metricsSpec, parseConfig, readParquetRows, type ClusterRow, type MetricsRow, type RolloutRow } from '@empo/core';
import { PolicyWorkers } from '@empo/policy';
import { TrainerSession } from '../src/session.ts';
import { trainerTaskModule } from '../src/worker-tasks.ts';
import { tinyPolicy } from './helpers.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A session on a fresh run of a tiny random policy, and one step's rollouts and clusters (two answers, one right). */
async function openSession(): Promise<{ session: TrainerSession; layout: RunLayout; step: (step: number) => [RolloutRow[], ClusterRow[]] }> {
  const dir = mkdtempSync(join(tmpdir(), 'empo-session-'));
  const policy = tinyPolicy(8);
  await policy.save(join(dir, 'base'));
  const prompt = policy.encodePrompt('a=1 b=2+3 a+b=?\n');
  policy.dispose();
  const config = parseConfig({ runs_dir: join(dir, 'runs'), model: join(dir, 'base'), backend: 'cpu' });
  const layout = RunLayout.fromConfig(config);
  const session = await TrainerSession.open(config, layout, 0);
  const step = (s: number): [RolloutRow[], ClusterRow[]] => [
    [0, 1].map((i) => ({
      step: s, question_id: 'q', question: 'q', sample_index: i, prompt: '', completion: '', prompt_ids: prompt,
      completion_ids: [5, 6 + i], logprobs: [-1.5, -2], finished: true,
    })),
    [1, 0].map((reward, i) => ({
      step: s, question_id: 'q', sample_index: i, answer: String(i), cluster_id: i, cluster_size: 1, reward, entropy: 0.6, keep: true,
    })),
  ];
  return { session, layout, step };
}

describe('the collapse warning', () => {
  it('compares a step with the step before it in the same session', async () => {
    const { session, step } = await openSession();
    const [rollouts] = step(1);
    // three questions answered differently, then all the same: distinct majority answers fall from 100% to 33%
    const batch = (s: number, answers: string[]): [RolloutRow[], ClusterRow[]] => [
      answers.flatMap((_, q) => rollouts.map((r) => ({ ...r, step: s, question_id: `q${q}` }))),
      answers.flatMap((answer, q) => [1, 0].map((reward, i) => ({
        step: s, question_id: `q${q}`, sample_index: i, answer: i === 0 ? answer : 'x', cluster_id: i, cluster_size: 2 - i, reward, entropy: 0.6, keep: true,
      }))),
    ];
    const warn = vi.spyOn(log, 'warn').mockImplementation(() => undefined);
    try {
      session.train(...batch(1, ['1', '2', '3']));
      session.train(...batch(2, ['1', '2', '3']));
      expect(warn).not.toHaveBeenCalled();
      session.train(...batch(3, ['4', '4', '4']));
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]![0]).toMatch(/fell from 100% to 33% of questions at step 3/);
    } finally {
      warn.mockRestore();
      await session.flush();
      session.dispose();
    }
  });
});

describe('metrics files written in the background', () => {
  it('are on disk after flush, with the metrics the step returned', async () => {
    const { session, layout, step } = await openSession();
    const metrics: MetricsRow[] = [];
    metrics.push(await session.trainParallel(...step(1), null));
    metrics.push(session.train(...step(2)));
    await session.flush();
    for (const m of metrics) {
      const [row] = readParquetRows<MetricsRow>(layout.metricsPath(m.step), metricsSpec);
      expect(row).toEqual(m);
    }
    await session.save();
    expect(layout.checkpointSteps()).toEqual([2]);
    session.dispose();
  });

  it('with workers, are encoded during the next update (a worker free) or at flush, and known to the guard meanwhile', async () => {
    const { session, layout, step } = await openSession();
    const workers = await PolicyWorkers.start({ workers: 2, backend: 'cpu', model: session.policy, taskModules: [trainerTaskModule] });
    try {
      const m1 = await session.trainParallel(...step(1), workers);
      expect(session.pendingMetricsSteps).toEqual([1]);
      expect(existsSync(layout.metricsPath(1))).toBe(false);
      expect(session.knownMetrics.get(1)).toEqual(m1);
      let encoded = 0;
      const extra = join(layout.stepDir(2), 'extra.bin');
      session.writeWithStep(extra, () => (encoded++, new Uint8Array([7, 8])));
      const m2 = await session.trainParallel(...step(2), workers);
      expect(session.pendingMetricsSteps).toEqual([2]); // step 1's was encoded while the update ran
      expect(encoded).toBe(1); // so was the file handed over
      expect(existsSync(layout.metricsPath(2))).toBe(false);
      await session.flush();
      expect(session.pendingMetricsSteps).toEqual([]);
      for (const m of [m1, m2]) expect(readParquetRows<MetricsRow>(layout.metricsPath(m.step), metricsSpec)).toEqual([m]);
      expect([...readFileSync(extra)]).toEqual([7, 8]);
    } finally {
      await workers.close();
      session.dispose();
    }
  });

  it('handed over with writeWithStep are encoded at the next update (no workers: its start) and written before a checkpoint', async () => {
    const { session, layout, step } = await openSession();
    const path = join(layout.stepDir(1), 'extra.bin');
    let encoded = 0;
    session.writeWithStep(path, () => (encoded++, new Uint8Array([1, 2, 3])));
    expect(encoded).toBe(0);
    await session.trainParallel(...step(1), null);
    expect(encoded).toBe(1);
    await session.save();
    expect([...readFileSync(path)]).toEqual([1, 2, 3]);
    session.writeWithStep(join(layout.stepDir(2), 'bad.bin'), () => {
      throw new Error('no bytes');
    });
    await expect(session.flush()).rejects.toThrow(/could not write .*bad\.bin: no bytes/);
    expect(() => session.writeWithStep(join(layout.stepDir(2), 'later.bin'), () => new Uint8Array())).toThrow(/bad\.bin/);
    session.dispose();
  });

  it('report a file that could not be written, naming it, at flush, save and the next step', async () => {
    const { session, layout, step } = await openSession();
    mkdirSync(layout.root, { recursive: true });
    writeFileSync(layout.stepDir(1), 'a file where the step folder should be');
    await session.trainParallel(...step(1), null); // the step itself completes; its metrics file cannot be written
    const message = new RegExp(`could not write ${layout.metricsPath(1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`);
    await expect(session.flush()).rejects.toThrow(message);
    await expect(session.save()).rejects.toThrow(message);
    expect(() => session.train(...step(2))).toThrow(message);
    await expect(session.trainParallel(...step(2), null)).rejects.toThrow(message);
    expect(layout.checkpointSteps()).toEqual([]);
    expect(existsSync(layout.metricsPath(2))).toBe(false);
    session.dispose();
  });
});
