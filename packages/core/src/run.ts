import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { removeStaleTemporaries } from './atomic.ts';
import type { EmpoConfig } from './config.ts';

/**
 * The run folder:
 *   <runs_dir>/<run>/config.json                      resolved config of the last stage run
 *   <runs_dir>/<run>/inputs.json                      what training started from (training questions, base model, seed; see @empo/sampler)
 *   <runs_dir>/<run>/step-000k/rollouts.parquet       sampler output for step k
 *   <runs_dir>/<run>/step-000k/clusters.parquet       clusterer output for step k
 *   <runs_dir>/<run>/step-000k/metrics.parquet        trainer metrics for step k
 *   <runs_dir>/<run>/checkpoints/step-000k/           model after step k (Hugging Face folder + trainer_state.json)
 *   <runs_dir>/<run>/eval/step-000k/                  evaluation of the model after step k (step 0 = base)
 * Step k is computed from the checkpoint of step k-1; the checkpoint of step 0 is the base model.
 */
export function stepName(step: number): string {
  return `step-${String(step).padStart(4, '0')}`;
}

export function parseStepName(name: string): number | null {
  const match = /^step-(\d{4,})$/.exec(name);
  return match ? Number(match[1]) : null;
}

/** Files that must all exist before a checkpoint counts as complete. */
export const checkpointFiles = ['config.json', 'model.safetensors', 'tokenizer.json', 'trainer_state.json'];

export class RunLayout {
  readonly root: string;

  constructor(readonly runsDir: string, readonly run: string, readonly baseModel: string) {
    this.root = resolve(runsDir, run);
  }

  static fromConfig(config: EmpoConfig, cwd = process.cwd()): RunLayout {
    return new RunLayout(resolve(cwd, config.runs_dir), config.run, resolve(cwd, config.model));
  }

  get configPath(): string { return join(this.root, 'config.json'); }
  stepDir(step: number): string { return join(this.root, stepName(step)); }
  rolloutsPath(step: number): string { return join(this.stepDir(step), 'rollouts.parquet'); }
  clustersPath(step: number): string { return join(this.stepDir(step), 'clusters.parquet'); }
  metricsPath(step: number): string { return join(this.stepDir(step), 'metrics.parquet'); }
  get checkpointsDir(): string { return join(this.root, 'checkpoints'); }
  checkpointDir(step: number): string { return join(this.checkpointsDir, stepName(step)); }
  evalDir(step: number): string { return join(this.root, 'eval', stepName(step)); }

  /** Model folder holding the weights after `step` (step 0: the base model). */
  modelDir(step: number): string {
    return step === 0 ? this.baseModel : this.checkpointDir(step);
  }

  /** Steps with a complete checkpoint, ascending. Temporary and partial folders are ignored. */
  checkpointSteps(): number[] {
    if (!existsSync(this.checkpointsDir)) return [];
    return readdirSync(this.checkpointsDir)
      .map((name) => [name, parseStepName(name)] as const)
      .filter(([name, step]) => step !== null && checkpointFiles.every((f) => existsSync(join(this.checkpointsDir, name, f))))
      .map(([, step]) => step!)
      .sort((a, b) => a - b);
  }

  latestCheckpointStep(): number {
    const steps = this.checkpointSteps();
    return steps.length ? steps[steps.length - 1]! : 0;
  }

  /** Steps whose step folder holds `file`, ascending. */
  stepsWith(file: string): number[] {
    if (!existsSync(this.root)) return [];
    return readdirSync(this.root)
      .map(parseStepName)
      .filter((step): step is number => step !== null && existsSync(join(this.stepDir(step), file)))
      .sort((a, b) => a - b);
  }

  /** Remove what killed writers left behind (temporary files and folders) in the run folder. */
  removeStaleTemporaries(): string[] {
    const dirs = [this.root, this.checkpointsDir, ...this.stepsWith('').map((s) => this.stepDir(s))];
    return dirs.flatMap((d) => removeStaleTemporaries(d));
  }

  /** The step the next sampler run produces: one past the latest checkpoint. */
  nextStep(): number {
    return this.latestCheckpointStep() + 1;
  }
}
