import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng, labeledQueriesSpec, queriesSpec, readParquetRows, sftSpec, type LabeledQueryRow, type QueryRow } from '@empo/core';
import { allProblems, defaultArithTaskOptions, heldOutCount, heldOutProblems, makeProblem, noisySolution, sampleProblems, splitOf, writeArithmeticTask } from '../src/index.ts';

describe('arithmetic task', () => {
  it('writes correct solutions', () => {
    const p = makeProblem(7, 3, 4, '*', 'a+b');
    expect(p.question).toBe('a=7 b=3*4 a+b=?');
    expect(p.solution).toBe('3*4=12 7+12=19 \\boxed{19}');
    expect(makeProblem(2, 9, 1, '-', 'b-a').answer).toBe(6);
    expect(allProblems().every((q) => q.answer >= 0)).toBe(true);
  });

  it('splits the held-out problems into disjoint evaluation and training questions, none pretrained on', () => {
    const pretrain = new Set(sampleProblems('pretrain', 3000, 1).map((p) => p.question));
    const { eval: evalSet, train } = heldOutProblems(200, null, 1);
    expect(evalSet).toHaveLength(200);
    expect(train).toHaveLength(heldOutCount() - 200);
    const evalQuestions = new Set(evalSet.map((p) => p.question));
    expect(train.some((p) => evalQuestions.has(p.question))).toBe(false);
    expect([...evalSet, ...train].every((p) => splitOf(p.question) === 'heldout' && !pretrain.has(p.question))).toBe(true);
    // The evaluation set does not depend on how many training questions are asked for.
    expect(heldOutProblems(200, 10, 1).eval.map((p) => p.question)).toEqual(evalSet.map((p) => p.question));
    expect(() => heldOutProblems(200, heldOutCount(), 1)).toThrow(/--eval.*--train/);
    expect(() => heldOutProblems(heldOutCount(), null, 1)).toThrow(/0 training questions/);
  });

  it('noisy solutions err at about the requested rate, carrying the error', () => {
    const rng = new Rng(3);
    const problems = sampleProblems('pretrain', 2000, 2);
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
    const train = readParquetRows<QueryRow>(join(dir, 'train.parquet'), queriesSpec);
    const labeled = readParquetRows<LabeledQueryRow>(join(dir, 'eval.parquet'), labeledQueriesSpec);
    expect(train).toHaveLength(heldOutCount() - defaultArithTaskOptions.evalCount);
    expect(labeled[0]!.answer).toMatch(/^\d+$/);
    const trainQuestions = new Set(train.map((r) => r.question));
    expect(labeled.some((r) => trainQuestions.has(r.question))).toBe(false);
    // EMPO's questions are new to the base model: none of them has a pretraining solution.
    const pretrained = new Set(readParquetRows<{ prompt: string }>(join(dir, 'sft.parquet'), sftSpec).map((r) => r.prompt.trim()));
    expect(pretrained.size).toBeGreaterThan(3000);
    expect(train.some((r) => pretrained.has(r.question))).toBe(false);
    expect(labeled.some((r) => pretrained.has(r.question))).toBe(false);
  });
});
