import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { clustersSpec, hashPath, readParquetRows, type ClusterRow } from '@empo/core';
import { makeTinyWorkspace } from './helpers.ts';

/**
 * The Nx task graph on a copy of this workspace (same code, a very small model, run 'default'):
 * steps advance, a stage whose inputs did not change replays from the cache, a config change
 * reruns exactly the stages downstream of it, and a replay never loses files.
 */
const repo = resolve(import.meta.dirname, '..');
const cacheMark = /local cache|existing outputs match the cache/;

function nx(cwd: string, target: string): string {
  return execFileSync(join(repo, 'node_modules/.bin/nx'), ['run', target, '--outputStyle=stream'], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false', EMPO_QUIET: '1', CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe('Nx stage targets and their cache', () => {
  let ws: string;
  const run = () => join(ws, 'data/runs/default');

  beforeAll(async () => {
    ws = mkdtempSync(join(tmpdir(), 'empo-nx-'));
    for (const f of ['nx.json', 'package.json', 'package-lock.json', '.gitignore', 'tsconfig.json']) cpSync(join(repo, f), join(ws, f));
    cpSync(join(repo, 'packages'), join(ws, 'packages'), { recursive: true, filter: (src) => !src.includes('node_modules') });
    symlinkSync(join(repo, 'node_modules'), join(ws, 'node_modules'));
    const tiny = await makeTinyWorkspace();
    cpSync(join(tiny.dir, 'model'), join(ws, 'tiny-model'), { recursive: true });
    cpSync(join(tiny.dir, 'train.parquet'), join(ws, 'train.parquet'));
    cpSync(join(tiny.dir, 'eval.parquet'), join(ws, 'eval.parquet'));
    writeConfig({});
  });

  function writeConfig(clusterer: Record<string, unknown>): void {
    writeFileSync(join(ws, 'empo.config.json'), JSON.stringify({
      model: 'tiny-model', train_queries: 'train.parquet', eval_queries: 'eval.parquet', backend: 'cpu',
      sampler: { questions_per_step: 3, num_generations: 4, max_new_tokens: 10 },
      trainer: { learning_rate: 1e-3 }, clusterer,
    }));
  }

  it('trainer:step twice performs steps 1 and 2; clusterer:cluster is then a cache hit', () => {
    nx(ws, 'trainer:step');
    nx(ws, 'trainer:step');
    for (const step of ['step-0001', 'step-0002']) {
      for (const f of ['rollouts.parquet', 'clusters.parquet', 'metrics.parquet']) expect(existsSync(join(run(), step, f)), `${step}/${f}`).toBe(true);
      expect(existsSync(join(run(), 'checkpoints', step, 'model.safetensors'))).toBe(true);
    }
    expect(existsSync(join(run(), 'step-0003'))).toBe(false);
    const before = statSync(join(run(), 'step-0002/clusters.parquet')).mtimeMs;
    const out = nx(ws, 'clusterer:cluster');
    expect(out).toMatch(cacheMark);
    expect(statSync(join(run(), 'step-0002/clusters.parquet')).mtimeMs).toBe(before);
  });

  it('a clusterer setting change reruns the clusterer and the trainer, not the sampler', () => {
    nx(ws, 'sampler:sample');
    const rollouts = join(run(), 'step-0003/rollouts.parquet');
    const sampled = { hash: hashPath(rollouts), mtime: statSync(rollouts).mtimeMs };
    writeConfig({ min_majority_share: 0.99 });
    const out = nx(ws, 'trainer:step');
    expect(out.match(new RegExp(cacheMark.source, 'g'))?.length).toBe(1); // the sampler's replay, nothing else
    expect({ hash: hashPath(rollouts), mtime: statSync(rollouts).mtimeMs }).toEqual(sampled);
    const clusters = readParquetRows<ClusterRow>(join(run(), 'step-0003/clusters.parquet'), clustersSpec);
    expect(clusters.every((c) => !c.keep)).toBe(true); // the new setting took effect
    expect(existsSync(join(run(), 'checkpoints/step-0003/trainer_state.json'))).toBe(true);
  });

  it('replaying from the cache restores a deleted run exactly and loses nothing', () => {
    const files = ['step-0001/rollouts.parquet', 'step-0001/clusters.parquet', 'checkpoints/step-0001/model.safetensors']
      .map((f) => [f, readFileSync(join(run(), f))] as const);
    rmSync(run(), { recursive: true });
    writeConfig({});
    const out = nx(ws, 'trainer:step');
    expect(out.match(new RegExp(cacheMark.source, 'g'))?.length).toBe(3);
    for (const [f, bytes] of files) expect(readFileSync(join(run(), f)).equals(bytes), f).toBe(true);
    expect(existsSync(join(run(), 'step-0002'))).toBe(false);
  });
});
