import { join } from 'node:path';
import { hashJson, hashPath, type EmpoConfig } from '@empo/core';

/**
 * What an evaluation's figures depend on besides the model: the labeled questions (the eval_queries file, or
 * the configured benchmarks' files) by content, the evaluator settings, the prompt template, the seed and the
 * backend. `empo cache-key eval` hashes it (with the model) for the Nx cache; every eval summary.json records
 * its hash (`inputs_key`), so a stored evaluation is reused only for the same inputs.
 * Imports no tensor library: cache-key runs before every Nx stage.
 */
export function evalInputs(config: EmpoConfig): Record<string, unknown> {
  return {
    seed: config.seed, backend: config.backend, evaluator: config.evaluator, template: config.sampler.prompt_template,
    openai: config.evaluator.engine === 'openai' ? config.openai : null,
    queries: hashPath(config.eval_queries),
    benchmarks: config.evaluator.benchmarks.map((b) => {
      const spec = typeof b === 'string' ? { name: b } : b;
      return hashPath(spec.path ?? join(config.evaluator.datasets_dir, spec.name, 'test.jsonl'));
    }),
  };
}

/** The hash of evalInputs, recorded in summary.json as `inputs_key`. */
export function evalInputsKey(config: EmpoConfig): string {
  return hashJson(evalInputs(config));
}
