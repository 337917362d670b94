import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RunLayout, configSchema, metricsSpec, trainerConfigSchema, writeParquet, type ClusterRow, type MetricsRow } from '@empo/core';
import { batchSignals, checkCollapse, collapseAlarm, type BatchSignals } from '../src/collapse.ts';

const t = trainerConfigSchema.parse({});
const healthy: BatchSignals = { semantic_entropy: 0.6, distinct_answer_share: 0.8 };

function cluster(question: string, sample: number, answer: string | null, size: number, entropy: number): ClusterRow {
  return {
    question_id: question, sample_index: sample, answer, cluster_id: 0, cluster_size: size, reward: size / 4, entropy, keep: true,
  } as ClusterRow;
}

describe('collapse guards', () => {
  it('stay quiet on a healthy run and before a full window', () => {
    expect(collapseAlarm([], { semantic_entropy: 0, distinct_answer_share: 0 }, t)).toBeNull();
    expect(collapseAlarm([healthy, healthy, healthy, healthy], healthy, t)).toBeNull();
  });

  it('fire when the windowed semantic entropy falls below the floor', () => {
    const low = { semantic_entropy: 0.01, distinct_answer_share: 0.8 };
    expect(collapseAlarm([healthy, healthy, low, low], low, t)).toMatch(/semantic entropy of steps 3-5 is 0\.010.*collapse_entropy_floor/);
    // One low batch alone is averaged away.
    expect(collapseAlarm([healthy, healthy, healthy, healthy], low, t)).toBeNull();
    expect(collapseAlarm([healthy, healthy, low, low], low, { ...t, collapse_entropy_floor: null })).toBeNull();
  });

  it('fire when distinct answers across questions fall below a share of the start', () => {
    const same = { semantic_entropy: 0.5, distinct_answer_share: 0.1 };
    expect(collapseAlarm([healthy, healthy, healthy, same, same], same, t)).toMatch(/fell from 80% \(steps 1-3\) to 10% \(steps 4-6\)/);
    expect(collapseAlarm([healthy, healthy, healthy, same, same], same, { ...t, collapse_distinct_ratio: null })).toBeNull();
  });

  it('read a batch: mean entropy over questions and distinct majority answers', () => {
    const rows = [
      cluster('q1', 0, '5', 3, 0.5), cluster('q1', 1, '5', 3, 0.5), cluster('q1', 2, '5', 3, 0.5), cluster('q1', 3, '4', 1, 0.5),
      cluster('q2', 0, '5', 4, 0), cluster('q2', 1, '5', 4, 0), cluster('q2', 2, '5', 4, 0), cluster('q2', 3, '5', 4, 0),
    ];
    expect(batchSignals(rows)).toEqual({ semantic_entropy: 0.25, distinct_answer_share: 0.5 });
  });

  describe('on a run folder', () => {
    let dir = '';
    let layout: RunLayout;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'empo-collapse-'));
      layout = RunLayout.fromConfig(configSchema.parse({ runs_dir: dir, run: 'r' }));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));
    const metrics = (step: number, entropy: number): MetricsRow => ({
      step, loss: 0, reward: 0.5, reward_std: 0.1, semantic_entropy: entropy, kept_fraction: 1, distinct_answer_share: 0.8,
      clip_ratio: 0, kl: 0, policy_entropy: 0.1, grad_norm: 1, learning_rate: 1e-4, completion_length: 20, tokens_per_second: 1, seconds: 1,
    });
    const unanimous = [0, 1, 2, 3].map((i) => cluster(`q${i}`, 0, String(i), 4, 0));

    it('take the history from the earlier steps\' metrics.parquet', () => {
      // No history yet: nothing to judge.
      expect(checkCollapse(layout, t, 3, unanimous)).toBeNull();
      writeParquet(layout.metricsPath(1), metricsSpec, [metrics(1, 0.6)]);
      writeParquet(layout.metricsPath(2), metricsSpec, [metrics(2, 0.02)]);
      writeParquet(layout.metricsPath(3), metricsSpec, [metrics(3, 0.01)]);
      expect(checkCollapse(layout, t, 4, unanimous)).toMatch(/steps 2-4/);
    });

    it('take the steps a session knows from memory, whose files may not be written yet', () => {
      writeParquet(layout.metricsPath(1), metricsSpec, [metrics(1, 0.6)]);
      writeParquet(layout.metricsPath(2), metricsSpec, [metrics(2, 0.02)]);
      // step 3's file is not on disk: without it the guard has no history to judge
      expect(checkCollapse(layout, t, 4, unanimous)).toBeNull();
      expect(checkCollapse(layout, t, 4, unanimous, new Map([[3, metrics(3, 0.01)]]))).toMatch(/steps 2-4/);
      // a known row is used instead of the file
      expect(checkCollapse(layout, t, 4, unanimous, new Map([[2, metrics(2, 0.9)], [3, metrics(3, 0.9)]]))).toBeNull();
    });
  });
});
