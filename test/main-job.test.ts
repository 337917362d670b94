import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { queriesSpec, writeParquet } from '@empo/core';
import { sampleProblems } from '@empo/tasks';
import { makeTinyWorkspace } from './helpers.ts';

const bin = resolve(import.meta.dirname, '../packages/cli/bin/empo.mjs');

/** `empo main` on a throwaway workspace; returns stdout, stderr, the run folder and a way to run it again. */
async function mainJob(args: string[], overrides: Record<string, unknown> = {}) {
  const { dir, config } = await makeTinyWorkspace({ run: 'main', ...overrides });
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config));
  const again = () => spawnSync(process.execPath, [bin, 'main', '--config', configPath, ...args], { encoding: 'utf8', timeout: 240_000 });
  const result = again();
  expect(result.status, result.stderr).toBe(0);
  return { stdout: result.stdout, stderr: result.stderr, root: join(config.runs_dir, 'main'), config, again };
}

describe('empo main (the main job)', () => {
  it('prints base vs EMPO with a paired 95% interval and writes summary.json and the report', async () => {
    const { stdout, root } = await mainJob(['--steps', '2', '--eval-every', '1', '--eval-questions', '3']);
    expect(stdout).toMatch(/base \(step 0\)/);
    expect(stdout).toMatch(/EMPO \(step 2 *\)/);
    expect(stdout).toMatch(/95% CI paired by question: greedy [+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\]/);
    const summary = JSON.parse(readFileSync(join(root, 'summary.json'), 'utf8'));
    for (const model of ['base', 'empo']) {
      expect(Object.keys(summary[model]).sort()).toEqual(['greedy_accuracy', 'maj_accuracy', 'mean_accuracy', 'semantic_entropy']);
    }
    expect(summary.steps).toBe(2);
    const greedy = summary.change.greedy_accuracy;
    expect(greedy.questions).toBe(6);
    expect(greedy.delta).toBeCloseTo(summary.empo.greedy_accuracy - summary.base.greedy_accuracy, 12);
    expect(greedy.ci95[0]).toBeLessThanOrEqual(greedy.delta);
    expect(greedy.ci95[1]).toBeGreaterThanOrEqual(greedy.delta);
    expect(existsSync(join(root, 'report', 'index.html'))).toBe(true);
  }, 240_000);

  it('refuses a finished run whose training questions changed, before writing anything into it', async () => {
    const { root, config, again } = await mainJob(['--steps', '1', '--eval-every', '0']);
    const before = statSync(join(root, 'eval', 'step-0000', 'summary.json')).mtimeMs;
    writeParquet(config.train_queries, queriesSpec, sampleProblems('heldout', 12, 9).map((p, i) => ({ question_id: `n${i}`, question: p.question })));
    const result = again();
    expect(result.status).toBe(2); // bad input (EmpoError)
    expect(result.stderr).toMatch(/run 'main' was trained from other inputs: train_queries \(.*train\.parquet has changed since\)/);
    expect(statSync(join(root, 'eval', 'step-0000', 'summary.json')).mtimeMs).toBe(before);
  }, 240_000);

  it('stops early when a collapse guard fires, and evaluates the last checkpoint', async () => {
    // An entropy floor no batch can reach: the guard fires as soon as its window (2 batches) is full.
    const { stdout, stderr, root } = await mainJob(['--steps', '4', '--eval-every', '0'], {
      trainer: { learning_rate: 1e-3, micro_batch_size: 5, collapse_entropy_floor: 100, collapse_window: 2 },
    });
    expect(stderr).toMatch(/collapse guard stopped run 'main' before step 2/);
    expect(stdout).toMatch(/EMPO \(step 1 *\)/);
    const summary = JSON.parse(readFileSync(join(root, 'summary.json'), 'utf8'));
    expect(summary.steps).toBe(1);
    expect(existsSync(join(root, 'checkpoints', 'step-0002'))).toBe(false);
  }, 240_000);
});
