/**
 * `empo train` with 2 worker threads writes exactly what it writes with none (rollouts, clusters, metrics,
 * checkpoints with optimizer state), and exits when done.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunLayout, clustersSpec, metricsSpec, readParquetRows, rolloutsSpec, type MetricsRow } from '@empo/core';
import { makeTinyWorkspace } from './helpers.ts';

const empo = resolve(import.meta.dirname, '../packages/cli/bin/empo.mjs');
const env = { ...process.env, EMPO_QUIET: '1' };

describe('worker threads', () => {
  it('empo train --workers 2 gives byte-identical results to --workers 1 (wasm), and exits', async () => {
    const { dir, config } = await makeTinyWorkspace({ backend: 'wasm', trainer: { learning_rate: 1e-3, micro_batch_size: 4, num_iterations: 2 } });
    const configPath = join(dir, 'config.json');
    writeFileSync(configPath, JSON.stringify(config));
    const steps = 2;
    for (const n of [1, 2]) {
      const r = spawnSync(process.execPath, [empo, 'train', '--config', configPath, '--run', `w${n}`, '--workers', String(n), '--steps', String(steps)], {
        cwd: dir, env, encoding: 'utf8', timeout: 110_000,
      });
      expect(r.status, `--workers ${n}: ${r.stderr}`).toBe(0);
    }
    const [one, two] = [1, 2].map((n) => new RunLayout(config.runs_dir, `w${n}`, config.model));
    for (let step = 1; step <= steps; step++) {
      expect(readParquetRows(two!.rolloutsPath(step), rolloutsSpec)).toEqual(readParquetRows(one!.rolloutsPath(step), rolloutsSpec));
      expect(readParquetRows(two!.clustersPath(step), clustersSpec)).toEqual(readParquetRows(one!.clustersPath(step), clustersSpec));
      const metrics = (l: RunLayout) => readParquetRows<MetricsRow>(l.metricsPath(step), metricsSpec).map((m) => ({ ...m, seconds: 0, tokens_per_second: 0 }));
      expect(metrics(two!)).toEqual(metrics(one!));
    }
    for (const file of ['model.safetensors', 'optimizer.safetensors', 'trainer_state.json']) {
      const a = readFileSync(join(one!.checkpointDir(steps), file));
      const b = readFileSync(join(two!.checkpointDir(steps), file));
      expect(a.equals(b), file).toBe(true);
    }
  });
});
