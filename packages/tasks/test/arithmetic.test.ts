import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng, labeledQueriesSpec, queriesSpec, readParquetRows, type LabeledQueryRow } from '@empo/core';
import { allProblems, defaultArithTaskOptions, makeProblem, noisySolution, sampleProblems, splitOf, writeArithmeticTask } from '../src/index.ts';

describe('arithmetic task', () => {
  it('writes correct solutions', () => {
    const p = makeProblem(7, 3, 4, '*', 'a+b');
    expect(p.question).toBe('a=7 b=3*4 a+b=?');
    expect(p.solution).toBe('3*4=12 7+12=19 \\boxed{19}');
    expect(makeProblem(2, 9, 1, '-', 'b-a').answer).toBe(6);
    expect(allProblems().every((q) => q.answer >= 0)).toBe(true);
  });

  it('keeps train and eval questions disjoint', () => {
    const train = new Set(sampleProblems('train', 3000, 1).map((p) => p.question));
    const evalSet = sampleProblems('eval', 300, 1);
    expect(evalSet.some((p) => train.has(p.question))).toBe(false);
    expect(evalSet.every((p) => splitOf(p.question) === 'eval')).toBe(true);
  });

  it('noisy solutions err at about the requested rate, carrying the error', () => {
    const rng = new Rng(3);
    const problems = sampleProblems('train', 2000, 2);
    const wrong = problems.filter((p) => noisySolution(p, rng, 0.1).answer !== p.answer).length / problems.length;
    expect(wrong).toBeGreaterThan(0.12);
    expect(wrong).toBeLessThan(0.26);
    expect(problems.every((p) => noisySolution(p, rng, 0).solution === p.solution)).toBe(true);
  });

  it('regenerates the bundled files byte for byte', () => {
    const dir = mkdtempSync(join(tmpdir(), 'empo-task-'));
    writeArithmeticTask(dir, defaultArithTaskOptions);
    const bundled = join(import.meta.dirname, '../../../data/tasks/arith');
    for (const f of ['train.parquet', 'eval.parquet', 'sft.parquet', 'train-labeled.parquet', 'sft-gold.parquet']) {
      expect(readFileSync(join(dir, f)).equals(readFileSync(join(bundled, f))), f).toBe(true);
    }
    const train = readParquetRows(join(dir, 'train.parquet'), queriesSpec);
    const labeled = readParquetRows<LabeledQueryRow>(join(dir, 'eval.parquet'), labeledQueriesSpec);
    expect(train).toHaveLength(defaultArithTaskOptions.trainCount);
    expect(labeled[0]!.answer).toMatch(/^\d+$/);
    const trainQuestions = new Set(train.map((r) => r.question));
    expect(labeled.some((r) => trainQuestions.has(r.question))).toBe(false);
  });
});
