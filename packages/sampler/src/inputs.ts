import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { EmpoError, RunLayout, hashPath, readParquetRows, rolloutsSpec, writeJsonAtomic, type EmpoConfig, type QueryRow, type RolloutRow } from '@empo/core';

/**
 * `<run>/inputs.json`: what a run's training started from, by content. A run continued from
 * other training questions, another base model or another seed would mix two experiments in
 * one folder, and a finished run would be reported (by `empo main`, `empo results`) as if it
 * had been trained on the new ones; so continuing one is an error that names what changed.
 */
const runInputsSchema = z.object({
  train_queries: z.object({ path: z.string(), sha256: z.string() }),
  model: z.object({ path: z.string(), sha256: z.string() }),
  seed: z.number(),
});
export type RunInputs = z.infer<typeof runInputsSchema>;

export function runInputsPath(layout: RunLayout): string {
  return join(layout.root, 'inputs.json');
}

/**
 * Check that the run folder was trained from these inputs, recording them when it has no
 * record yet. A folder from before the record existed is checked by its earliest sampled
 * questions, which must all be in the current training questions.
 */
export function checkRunInputs(config: EmpoConfig, queries: readonly QueryRow[]): void {
  const layout = RunLayout.fromConfig(config);
  const path = runInputsPath(layout);
  const current: RunInputs = {
    train_queries: { path: config.train_queries, sha256: hashPath(config.train_queries) },
    model: { path: config.model, sha256: hashPath(layout.baseModel) },
    seed: config.seed,
  };
  const restart = `Continue it with the inputs it started with, start another run (--run NAME), or delete ${layout.root}.`;
  if (existsSync(path)) {
    const parsed = runInputsSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (!parsed.success) throw new EmpoError(`${path}: not a run inputs record (${parsed.error.issues[0]?.path.join('.') || 'root'}: ${parsed.error.issues[0]?.message}); delete it to record the current inputs`);
    const recorded = parsed.data;
    const changed: string[] = [];
    for (const key of ['train_queries', 'model'] as const) {
      if (recorded[key].sha256 !== current[key].sha256) {
        const where = recorded[key].path === current[key].path ? `${current[key].path} has changed since` : `${recorded[key].path} then, ${current[key].path} now`;
        changed.push(`${key} (${where})`);
      }
    }
    if (recorded.seed !== current.seed) changed.push(`seed (${recorded.seed} then, ${current.seed} now)`);
    if (changed.length) throw new EmpoError(`run '${config.run}' was trained from other inputs: ${changed.join('; ')}. ${restart}`);
    return;
  }
  const sampled = layout.stepsWith('rollouts.parquet');
  if (sampled.length) {
    const first = sampled[0]!;
    const known = new Set(queries.map((q) => q.question));
    const stray = readParquetRows<RolloutRow>(layout.rolloutsPath(first), rolloutsSpec).find((r) => !known.has(r.question));
    if (stray) {
      throw new EmpoError(`run '${config.run}' was trained from other inputs: step ${first} sampled '${stray.question}', which is not in train_queries ${config.train_queries}. ${restart}`);
    }
  }
  mkdirSync(layout.root, { recursive: true });
  writeJsonAtomic(path, current);
}
