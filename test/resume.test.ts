import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunLayout, metricsSpec, readParquetRows, type MetricsRow } from '@empo/core';
import { makeTinyWorkspace } from './helpers.ts';

const empo = resolve(import.meta.dirname, '../packages/cli/bin/empo.mjs');
const env = { ...process.env, EMPO_QUIET: '1' };

function train(cwd: string, args: string[]): void {
  const result = spawnSync(process.execPath, [empo, 'train', ...args], { cwd, env, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`empo train failed (${result.status}): ${result.stderr}`);
}

/** Metrics without the wall-clock columns, which differ between any two runs. */
function metricsOf(layout: RunLayout, steps: number): Omit<MetricsRow, 'seconds' | 'tokens_per_second'>[] {
  return Array.from({ length: steps }, (_, i) => {
    const [row] = readParquetRows<MetricsRow>(layout.metricsPath(i + 1), metricsSpec);
    const { seconds: _s, tokens_per_second: _t, ...rest } = row!;
    return rest;
  });
}

describe('exact resume after SIGKILL', () => {
  it('a run killed in the middle of step k and restarted matches an uninterrupted run at step k+2', async () => {
    const { dir, config } = await makeTinyWorkspace({ sampler: { questions_per_step: 6, num_generations: 6, max_new_tokens: 16 } });
    const configPath = join(dir, 'config.json');
    writeFileSync(configPath, JSON.stringify(config));
    const k = 2;
    train(dir, ['--config', configPath, '--run', 'straight', '--steps', String(k + 2)]);

    const killedLayout = new RunLayout(config.runs_dir, 'killed', config.model);
    const child = spawn(process.execPath, [empo, 'train', '--config', configPath, '--run', 'killed', '--steps', String(k + 2)], { cwd: dir, env, stdio: 'ignore' });
    let killedMidStep = false;
    await new Promise<void>((done, fail) => {
      const poll = setInterval(() => {
        // Step k has started (its rollouts are written) but its checkpoint is not complete yet.
        if (existsSync(killedLayout.rolloutsPath(k))) {
          killedMidStep = !killedLayout.checkpointSteps().includes(k);
          child.kill('SIGKILL');
          clearInterval(poll);
        }
      }, 2);
      child.on('exit', () => { clearInterval(poll); done(); });
      child.on('error', fail);
    });
    expect(killedMidStep).toBe(true);
    expect(killedLayout.latestCheckpointStep()).toBe(k - 1);

    train(dir, ['--config', configPath, '--run', 'killed', '--steps', String(k + 2)]);
    const straightLayout = new RunLayout(config.runs_dir, 'straight', config.model);
    expect(metricsOf(killedLayout, k + 2)).toEqual(metricsOf(straightLayout, k + 2));
    for (const file of ['model.safetensors', 'optimizer.safetensors', 'trainer_state.json']) {
      const a = readFileSync(join(straightLayout.checkpointDir(k + 2), file));
      const b = readFileSync(join(killedLayout.checkpointDir(k + 2), file));
      expect(a.equals(b), file).toBe(true);
    }
  });

  it('checkpoints every save_steps steps and keeps the newest save_total_limit', async () => {
    const { dir, config } = await makeTinyWorkspace({ trainer: { save_steps: 2, save_total_limit: 2 } });
    const configPath = join(dir, 'config.json');
    writeFileSync(configPath, JSON.stringify(config));
    train(dir, ['--config', configPath, '--steps', '7']);
    const layout = RunLayout.fromConfig(config);
    expect(layout.checkpointSteps()).toEqual([6, 7]);
    expect(layout.stepsWith('metrics.parquet')).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });
});
