import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunLayout, parquetToTable } from '@empo/core';
import { readFileSync } from 'node:fs';
import { trainLoop } from '../packages/cli/src/loop.ts';
import { makeTinyWorkspace } from './helpers.ts';

process.env.EMPO_QUIET = '1';

describe('EMPO trains without ever reading a label', () => {
  it('the bundled training file has no answer column', () => {
    const path = join(import.meta.dirname, '../data/tasks/arith/train.parquet');
    const table = parquetToTable(readFileSync(path), path);
    expect(table.schema.fields.map((f) => f.name)).toEqual(['question_id', 'question']);
  });

  it('the training path runs with the labeled files unreachable', async () => {
    const { dir, config } = await makeTinyWorkspace({ run: 'nolabels' });
    const blind = { ...config, eval_queries: join(dir, 'no-such-labels.parquet') };
    expect(blind.clusterer.reward).toBe('empo');
    expect(blind.clusterer.gold_answers).toBeNull();
    const metrics = await trainLoop(blind, 2);
    expect(metrics.map((m) => m.step)).toEqual([1, 2]);
    expect(RunLayout.fromConfig(blind).checkpointSteps()).toEqual([1, 2]);
  });

  it('the gold baseline refuses to run without its labels', async () => {
    const { config } = await makeTinyWorkspace({ run: 'gold', clusterer: { reward: 'gold' } });
    await expect(trainLoop(config, 1)).rejects.toThrow(/clusterer\.reward 'gold' needs clusterer\.gold_answers/);
  });
});
