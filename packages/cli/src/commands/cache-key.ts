import { EmpoError, RunLayout, hashPath } from '@empo/core';
import { evalInputs } from '@empo/evaluator/inputs';
import { configFrom, configOptions, parse } from '../args.ts';
import type { Command } from './types.ts';

/**
 * What a stage's result depends on, printed as JSON for Nx's `runtime` cache input: the step
 * the stage would work on, the content hashes of the files it would read, and its config
 * section. Nx hashes this output, so a stage replays from the cache exactly when all of these
 * (and the code, which Nx hashes itself) are unchanged.
 */
export function stageKey(stage: string, config: ReturnType<typeof configFrom>): Record<string, unknown> {
  const layout = RunLayout.fromConfig(config);
  switch (stage) {
    case 'sample': {
      const step = layout.nextStep();
      return {
        stage, run: config.run, step, seed: config.seed, backend: config.backend, sampler: config.sampler,
        openai: config.sampler.engine === 'openai' ? config.openai : null,
        model: hashPath(layout.modelDir(step - 1)), queries: hashPath(config.train_queries),
      };
    }
    case 'cluster': {
      const steps = layout.stepsWith('rollouts.parquet');
      const step = steps.length ? steps[steps.length - 1]! : null;
      return {
        stage, run: config.run, step, seed: config.seed, clusterer: config.clusterer,
        gold_answers: config.clusterer.reward === 'gold' && config.clusterer.gold_answers ? hashPath(config.clusterer.gold_answers) : null,
        rollouts: step === null ? 'absent' : hashPath(layout.rolloutsPath(step)),
      };
    }
    case 'train': {
      const step = layout.nextStep();
      return {
        stage, run: config.run, step, seed: config.seed, backend: config.backend, model_path: config.model, trainer: config.trainer,
        model: hashPath(layout.modelDir(step - 1)),
        rollouts: hashPath(layout.rolloutsPath(step)), clusters: hashPath(layout.clustersPath(step)),
      };
    }
    case 'eval': {
      const step = layout.latestCheckpointStep();
      return { stage, run: config.run, step, model: hashPath(layout.modelDir(step)), ...evalInputs(config) };
    }
    default:
      throw new EmpoError(`cache-key: unknown stage '${stage}' (expected sample, cluster, train or eval)`);
  }
}

export const cacheKey: Command = {
  summary: 'print what a stage depends on (the Nx cache key input)',
  async run(argv) {
    const { values, positionals } = parse('cache-key', argv, configOptions, true);
    if (values.help || positionals.length !== 1) {
      process.stdout.write('Usage: empo cache-key <sample|cluster|train|eval> [config options]\n');
      if (!values.help) throw new EmpoError('cache-key: expected exactly one stage name');
      return;
    }
    process.stdout.write(JSON.stringify(stageKey(positionals[0]!, configFrom(values))) + '\n');
  },
};
