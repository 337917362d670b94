import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunLayout, queriesSpec, readParquetRows, writeParquet, type QueryRow } from '@empo/core';
import { runInputsPath, runSampler } from '@empo/sampler';
import { sampleProblems } from '@empo/tasks';
import { trainLoop } from '../packages/cli/src/loop.ts';
import { makeTinyWorkspace } from './helpers.ts';

describe('a run continues only from the inputs it started with', () => {
  it('refuses other training questions, another base model or another seed, naming what changed', async () => {
    const { dir, config } = await makeTinyWorkspace({ workers: 1 });
    const layout = RunLayout.fromConfig(config);
    await trainLoop(config, 1);
    const recorded = JSON.parse(readFileSync(runInputsPath(layout), 'utf8'));
    expect(recorded.seed).toBe(config.seed);
    expect(recorded.train_queries.path).toBe(config.train_queries);

    // Same inputs: finished (or continued) as before.
    await expect(trainLoop(config, 1)).resolves.toEqual([]);
    await expect(trainLoop({ ...config, seed: config.seed + 1 }, 2)).rejects.toThrow(/run 'e2e' was trained from other inputs: seed \(0 then, 1 now\)/);

    // New questions in the same file: even a finished run is not reported as trained on them.
    const original = readParquetRows<QueryRow>(config.train_queries, queriesSpec);
    writeParquet(config.train_queries, queriesSpec, sampleProblems('heldout', 12, 9).map((p, i) => ({ question_id: `n${i}`, question: p.question })));
    await expect(trainLoop(config, 1)).rejects.toThrow(/train_queries \(.*train\.parquet has changed since\)/);
    await expect(runSampler(config)).rejects.toThrow(/--run NAME/); // the Nx stage checks too

    // Another base model folder.
    writeParquet(config.train_queries, queriesSpec, original);
    await expect(trainLoop({ ...config, model: join(dir, 'runs', 'e2e', 'checkpoints', 'step-0001') }, 2)).rejects.toThrow(/model \(.*model then, .*step-0001 now\)/);

    // A run folder from before the record: checked by the questions it sampled first.
    rmSync(runInputsPath(layout));
    writeParquet(config.train_queries, queriesSpec, sampleProblems('heldout', 12, 9).map((p, i) => ({ question_id: `n${i}`, question: p.question })));
    await expect(trainLoop(config, 2)).rejects.toThrow(/step 1 sampled 'a=.*', which is not in train_queries/);
    expect(existsSync(runInputsPath(layout))).toBe(false);
    writeParquet(config.train_queries, queriesSpec, original);
    await expect(trainLoop(config, 1)).resolves.toEqual([]);
    expect(existsSync(runInputsPath(layout))).toBe(true);
  });
});
