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
    const [{ evaluateStep, readEvalQueries, writeReport }, { trainLoop }, { Policy }] = await Promise.all([
      import('@empo/evaluator'), import('../loop.ts'), import('@empo/policy'),
    ]);
    const started = Date.now();
    const layout = RunLayout.fromConfig(config);
    const questions = readEvalQueries(config);
    await selectBackend(config.backend);

    const basePolicy = await Policy.load(layout.baseModel);
    const base = evaluateStep(basePolicy, questions, config, 0, layout.baseModel);
    basePolicy.dispose();

    await trainLoop(config, steps, (metrics, session) => {
      if (evalEvery > 0 && metrics.step % evalEvery === 0 && metrics.step < steps) {
        evaluateStep(session.policy, questions.slice(0, evalQuestions), config, metrics.step, `${config.run} step ${metrics.step} (in memory)`);
      }
    });
    const finalPolicy = await Policy.load(layout.modelDir(steps));
    const final = evaluateStep(finalPolicy, questions, config, steps, layout.modelDir(steps));
    finalPolicy.dispose();

    const summary = { run: config.run, steps, questions: base.questions, samples: base.samples, base: figures(base), empo: figures(final) };
    writeJsonAtomic(join(layout.root, 'summary.json'), summary);
    const report = writeReport(layout);

    const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(1)}%`).padStart(9);
    const ent = (x: number | null) => (x === null ? '–' : x.toFixed(3)).padStart(9);
    const k = base.samples;
    process.stdout.write(
      `\nEMPO without labels: ${config.model}, ${steps} steps, ${base.questions} held-out questions, k = ${k}\n\n` +
        `model             greedy   mean@${k}    maj@${k}  sem. entropy\n` +
        `base (step 0) ${pct(base.greedy_accuracy)}${pct(base.mean_accuracy)}${pct(base.maj_accuracy)}${ent(base.semantic_entropy)}\n` +
        `EMPO (step ${String(steps).padEnd(3)})${pct(final.greedy_accuracy)}${pct(final.mean_accuracy)}${pct(final.maj_accuracy)}${ent(final.semantic_entropy)}\n\n` +
        `summary: ${join(layout.root, 'summary.json')}\nreport:  ${report}\n`,
    );
    log.info(`main job finished in ${((Date.now() - started) / 1000).toFixed(0)}s`);
  },
};
