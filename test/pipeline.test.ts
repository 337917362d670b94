import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  RunLayout, clustersSpec, hashPath, metricsSpec, parseConfig, queriesSpec, readParquetRows, rolloutsSpec, writeParquet,
  type ClusterRow, type MetricsRow, type RolloutRow,
} from '@empo/core';
import { runClusterer } from '@empo/clusterer';
import { runEvaluator } from '@empo/evaluator';
import { Policy } from '@empo/policy';
import { runSampler } from '@empo/sampler';
import { runTrainer } from '@empo/trainer';
import { makeTinyWorkspace } from './helpers.ts';

process.env.EMPO_QUIET = '1';

describe('one full EMPO step on a very small model', () => {
  let ws: Awaited<ReturnType<typeof makeTinyWorkspace>>;
  beforeAll(async () => {
    ws = await makeTinyWorkspace();
  });

  it('runs sample -> cluster -> train twice, then evaluates', async () => {
    const { config } = ws;
    const layout = RunLayout.fromConfig(config);
    for (const step of [1, 2]) {
      const sampled = await runSampler(config);
      expect(sampled.step).toBe(step);
      const rollouts = readParquetRows<RolloutRow>(layout.rolloutsPath(step), rolloutsSpec);
      expect(rollouts).toHaveLength(3 * 4);
      for (const r of rollouts) {
        expect(r.completion_ids.length).toBe(r.logprobs.length);
        expect(r.completion_ids.length).toBeGreaterThan(0);
        expect(r.logprobs.every((lp) => lp <= 0 && Number.isFinite(lp))).toBe(true);
      }
      await runClusterer(config);
      const clusters = readParquetRows<ClusterRow>(layout.clustersPath(step), clustersSpec);
      expect(clusters).toHaveLength(rollouts.length);
      const { metrics, checkpoint } = await runTrainer(config);
      expect(metrics.step).toBe(step);
      expect(existsSync(join(checkpoint, 'model.safetensors'))).toBe(true);
      expect(JSON.parse(readFileSync(join(checkpoint, 'trainer_state.json'), 'utf8')).step).toBe(step);
      const stored = readParquetRows<MetricsRow>(layout.metricsPath(step), metricsSpec);
      expect(stored).toEqual([metrics]);
    }
    expect(layout.checkpointSteps()).toEqual([1, 2]);
    expect(readdirSync(layout.checkpointsDir)).toEqual(['step-0001', 'step-0002']);
    const summary = await runEvaluator(config);
    expect(summary.step).toBe(2);
    expect(summary.questions).toBe(6);
    expect(existsSync(join(layout.evalDir(2), 'samples.parquet'))).toBe(true);
  });

  it('the update moves the weights only when some group has a non-zero advantage', async () => {
    const { config } = ws;
    const layout = RunLayout.fromConfig(config);
    const clusters = readParquetRows<ClusterRow>(layout.clustersPath(2), clustersSpec);
    const anyKept = clusters.some((c) => c.keep);
    const before = await Policy.load(layout.modelDir(1));
    const after = await Policy.load(layout.modelDir(2));
    const diff = tf.tidy(() => {
      let total = 0;
      for (const [name, v] of before.namedVariables()) total += tf.sum(tf.abs(tf.sub(v, after.namedVariables().get(name)!))).dataSync()[0]!;
      return total;
    });
    before.dispose();
    after.dispose();
    if (anyKept) expect(diff).toBeGreaterThan(0);
    else expect(diff).toBe(0);
  });
});

describe('bad input ends with a clear error and leaves run files untouched', () => {
  it('missing queries file, empty question set, wrong column types, unknown config key', async () => {
    const { dir, config } = await makeTinyWorkspace({ run: 'bad' });
    await runSampler(config);
    const layout = RunLayout.fromConfig(config);
    const before = hashPath(layout.root);
    const rolloutsBefore = hashPath(layout.rolloutsPath(1));

    await expect(runSampler({ ...config, train_queries: join(dir, 'absent.parquet') })).rejects.toThrow(/absent\.parquet: file not found/);
    writeParquet(join(dir, 'empty.parquet'), queriesSpec, []);
    await expect(runSampler({ ...config, train_queries: join(dir, 'empty.parquet') })).rejects.toThrow(/empty\.parquet: the question set is empty/);
    writeParquet(join(dir, 'typed.parquet'), { name: 'q', doc: '', columns: [{ name: 'question_id', type: 'int32', doc: '' }, { name: 'question', type: 'utf8', doc: '' }] },
      [{ question_id: 1, question: 'x' }]);
    await expect(runSampler({ ...config, train_queries: join(dir, 'typed.parquet') })).rejects.toThrow(/typed\.parquet: column 'question_id' has type Int32, expected Utf8/);
    expect(() => parseConfig({ sampler: { num_generation: 4 } })).toThrow(/unknown config key 'sampler\.num_generation'/);
    expect(hashPath(layout.root)).toBe(before);
    // A corrupt clusters file is rejected by name, and no checkpoint is written.
    writeFileSync(join(dir, 'runs', 'bad', 'step-0001', 'clusters.parquet'), 'garbage');
    await expect(runTrainer(config)).rejects.toThrow(/clusters\.parquet: not a readable Parquet file/);
    writeFileSync(join(dir, 'runs', 'bad', 'step-0001', 'clusters.parquet'), '');
    await expect(runTrainer(config)).rejects.toThrow(/clusters\.parquet/);
    expect(layout.checkpointSteps()).toEqual([]);
    expect(hashPath(layout.rolloutsPath(1))).toBe(rolloutsBefore);
  });
});

describe('trainer options through the stages', () => {
  it('beta > 0 loads the reference model and reports KL; num_iterations and dapo run', async () => {
    const { config } = await makeTinyWorkspace({
      run: 'kl', trainer: { beta: 0.1, num_iterations: 2, loss_type: 'dapo', learning_rate: 3e-3, epsilon_high: 0.28 },
      clusterer: { reward: 'random', entropy_high: 100 },
    });
    const kls: number[] = [];
    for (let step = 1; step <= 2; step++) {
      await runSampler(config);
      await runClusterer(config);
      kls.push((await runTrainer(config)).metrics.kl);
    }
    expect(kls[0]).toBeCloseTo(0, 6); // policy == reference before the first update
    expect(kls[1]).toBeGreaterThan(0);
    const state = JSON.parse(readFileSync(join(RunLayout.fromConfig(config).checkpointDir(2), 'trainer_state.json'), 'utf8'));
    expect(state.optimizer_step).toBe(4);
  });
});
