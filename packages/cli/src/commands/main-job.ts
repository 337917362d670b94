import { join } from 'node:path';
import { RunLayout, log, selectBackend, writeJsonAtomic } from '@empo/core';
import { configFrom, configHelp, configOptions, parse, positiveInt } from '../args.ts';
import type { Command } from './types.ts';

const help = `Usage: empo main [--steps N] [--eval-every N] [--eval-questions N] [options]

The main job. Runs EMPO on the bundled default as run 'main' (unless --run is given): the
base model is evaluated on the held-out labeled set, N EMPO steps train it without labels
(evaluating a held-out subset every --eval-every steps), the final model is evaluated, and a
table of greedy accuracy, mean@k, maj@k and semantic entropy for base and EMPO is printed.
Writes data/runs/<run>/summary.json and data/runs/<run>/report/index.html. An interrupted run
resumes where it stopped.

  --steps N            EMPO steps (default 20)
  --eval-every N       held-out evaluation interval during training (default 5; 0 = only base and final)
  --eval-questions N   questions in the periodic evaluations (default 64; base and final use evaluator.limit)
${configHelp}
`;

/** The figures of summary.json for one model. */
function figures(s: { greedy_accuracy: number; mean_accuracy: number | null; maj_accuracy: number | null; semantic_entropy: number | null }) {
  return { greedy_accuracy: s.greedy_accuracy, mean_accuracy: s.mean_accuracy, maj_accuracy: s.maj_accuracy, semantic_entropy: s.semantic_entropy };
}

export const mainJob: Command = {
  summary: 'the main job: EMPO on the bundled tiny model, evaluated before and after, with a report',
  async run(argv) {
    const { values } = parse('main', argv, {
      ...configOptions, steps: { type: 'string' }, 'eval-every': { type: 'string' }, 'eval-questions': { type: 'string' },
    });
    if (values.help) return void process.stdout.write(help);
    const config = configFrom({ ...values, run: values.run ?? 'main' });
    const steps = positiveInt('--steps', values.steps, 20);
    const evalEvery = positiveInt('--eval-every', values['eval-every'], 5);
    const evalQuestions = positiveInt('--eval-questions', values['eval-questions'], 64);
    const [{ compareSteps, evaluateStepParallel, formatDifference, readEvalQueries, writeReport }, { checkedTrainQueries, trainLoop }, { Policy }, { loopWorkers }] = await Promise.all([
      import('@empo/evaluator'), import('../loop.ts'), import('@empo/policy'), import('../workers.ts'),
    ]);
    const started = Date.now();
    const layout = RunLayout.fromConfig(config);
    // Before anything is written into the run folder: a run is continued only from the inputs it started with.
    const trainQueries = checkedTrainQueries(config);
    const questions = readEvalQueries(config);
    const backend = await selectBackend(config.backend);

    const basePolicy = await Policy.load(layout.baseModel);
    // One set of worker threads (config `workers`) for the evaluations and the training: same results as without.
    const workers = await loopWorkers(config, backend, basePolicy);
    let base, final, finalStep;
    try {
      base = await evaluateStepParallel(basePolicy, workers, questions, config, 0, layout.baseModel);
      basePolicy.dispose();

      await trainLoop(config, steps, async (metrics, session) => {
        if (evalEvery > 0 && metrics.step % evalEvery === 0 && metrics.step < steps) {
          await evaluateStepParallel(session.policy, workers, questions.slice(0, evalQuestions), config, metrics.step, `${config.run} step ${metrics.step} (in memory)`);
        }
      }, { workers, queries: trainQueries });
      // The collapse guards may stop the run early: the result is then its last checkpoint.
      finalStep = layout.latestCheckpointStep();
      const finalPolicy = await Policy.load(layout.modelDir(finalStep));
      final = await evaluateStepParallel(finalPolicy, workers, questions, config, finalStep, layout.modelDir(finalStep));
      finalPolicy.dispose();
    } finally {
      await workers?.close();
    }
    const change = compareSteps(layout, 0, finalStep);

    const summary = {
      run: config.run, steps: finalStep, questions: base.questions, samples: base.samples, base: figures(base), empo: figures(final),
      // EMPO minus base on the same questions, with the 95% interval of the evaluation noise (paired by question).
      change: { greedy_accuracy: change.greedy_accuracy, mean_accuracy: change.mean_accuracy, maj_accuracy: change.maj_accuracy },
    };
    writeJsonAtomic(join(layout.root, 'summary.json'), summary);
    const report = writeReport(layout);

    const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(1)}%`).padStart(9);
    const ent = (x: number | null) => (x === null ? '–' : x.toFixed(3)).padStart(14);
    const label = (text: string) => text.padEnd(16);
    const k = base.samples;
    process.stdout.write(
      `\nEMPO without labels: ${config.model}, ${finalStep} steps, ${base.questions} held-out questions, k = ${k}\n\n` +
        `${label('model')}${'greedy'.padStart(9)}${`mean@${k}`.padStart(9)}${`maj@${k}`.padStart(9)}${'sem. entropy'.padStart(14)}\n` +
        `${label('base (step 0)')}${pct(base.greedy_accuracy)}${pct(base.mean_accuracy)}${pct(base.maj_accuracy)}${ent(base.semantic_entropy)}\n` +
        `${label(`EMPO (step ${finalStep})`)}${pct(final.greedy_accuracy)}${pct(final.mean_accuracy)}${pct(final.maj_accuracy)}${ent(final.semantic_entropy)}\n` +
        `\nEMPO - base in points, 95% CI paired by question: greedy ${formatDifference(change.greedy_accuracy)}, ` +
        `mean@${k} ${formatDifference(change.mean_accuracy)}, maj@${k} ${formatDifference(change.maj_accuracy)}\n\n` +
        `summary: ${join(layout.root, 'summary.json')}\nreport:  ${report}\n`,
    );
    log.info(`main job finished in ${((Date.now() - started) / 1000).toFixed(0)}s`);
  },
};
