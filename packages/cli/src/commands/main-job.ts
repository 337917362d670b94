import { join } from 'node:path';
import { RunLayout, log, writeJsonAtomic } from '@empo/core';
import { configFrom, configHelp, configOptions, parse, positiveInt } from '../args.ts';
import type { Command } from './types.ts';

/**
 * The main job: a short EMPO run on the bundled default, then the base model and the final
 * checkpoint evaluated on the held-out labeled set, printed as a table and written to
 * <run>/summary.json. Resumes an interrupted run.
 */
export const mainJob: Command = {
  summary: 'the main job: a short EMPO run on the bundled tiny model, evaluated before and after',
  async run(argv) {
    const { values } = parse('main', argv, { ...configOptions, steps: { type: 'string' } });
    if (values.help) {
      process.stdout.write(`Usage: empo main [--steps N] [options]

Runs EMPO for N steps (default 10) as run 'main' (unless --run is given), then evaluates the
base model and the final checkpoint on eval_queries and prints greedy accuracy for both.
Writes data/runs/<run>/summary.json. An interrupted run resumes where it stopped.

  --steps N          EMPO steps (default 10)
${configHelp}
`);
      return;
    }
    const config = configFrom({ ...values, run: values.run ?? 'main' });
    const steps = positiveInt('--steps', values.steps, 10);
    const [{ runEvaluator }, { trainLoop }] = await Promise.all([import('@empo/evaluator'), import('../loop.ts')]);
    const layout = RunLayout.fromConfig(config);
    const started = Date.now();
    await trainLoop(config, steps);
    const base = await runEvaluator(config, 0);
    const final = await runEvaluator(config, steps);
    const summary = {
      run: config.run,
      steps,
      base: { greedy_accuracy: base.greedy_accuracy },
      empo: { greedy_accuracy: final.greedy_accuracy },
      questions: base.questions,
    };
    writeJsonAtomic(join(layout.root, 'summary.json'), summary);
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(8);
    process.stdout.write(
      `\nEMPO on ${config.model}, ${steps} steps, ${base.questions} held-out questions\n` +
        `model                 greedy accuracy\n` +
        `base (step 0)         ${pct(base.greedy_accuracy)}\n` +
        `EMPO (step ${String(steps).padEnd(4)})      ${pct(final.greedy_accuracy)}\n` +
        `summary: ${join(layout.root, 'summary.json')}\n`,
    );
    log.info(`main job finished in ${((Date.now() - started) / 1000).toFixed(0)}s`);
  },
};
