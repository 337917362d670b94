import { configHelp, configFrom, configOptions, parse, positiveInt } from '../args.ts';
import type { Command } from './types.ts';

function help(usage: string, text: string, extra = ''): string {
  return `${usage}\n\n${text}\n\n${extra ? extra + '\n' : ''}${configHelp}\n`;
}

export const sample: Command = {
  summary: 'sample G completions per question from the latest checkpoint -> step-k/rollouts.parquet',
  async run(argv) {
    const { values } = parse('sample', argv, configOptions);
    if (values.help) return void process.stdout.write(help('Usage: empo sample [options]',
      'Samples the next step k (one past the latest checkpoint): questions from train_queries,\nG = sampler.num_generations completions each, written to <run>/step-k/rollouts.parquet.'));
    const { runSampler } = await import('@empo/sampler');
    await runSampler(configFrom(values));
  },
};

export const cluster: Command = {
  summary: 'extract answers, cluster them, compute entropy and rewards -> step-k/clusters.parquet',
  async run(argv) {
    const { values } = parse('cluster', argv, configOptions);
    if (values.help) return void process.stdout.write(help('Usage: empo cluster [options]',
      'Clusters the latest step that has rollouts: <run>/step-k/rollouts.parquet -> clusters.parquet.'));
    const { runClusterer } = await import('@empo/clusterer');
    await runClusterer(configFrom(values));
  },
};

export const trainStep: Command = {
  summary: 'one policy update from step k rollouts and clusters -> checkpoint k and metrics',
  async run(argv) {
    const { values } = parse('train-step', argv, configOptions);
    if (values.help) return void process.stdout.write(help('Usage: empo train-step [options]',
      'Updates the checkpoint of step k-1 with the GRPO loss on step k rollouts and clusters, writing\ncheckpoints/step-k and step-k/metrics.parquet.'));
    const { runTrainer } = await import('@empo/trainer');
    await runTrainer(configFrom(values));
  },
};

export const step: Command = {
  summary: 'one full EMPO iteration: sample, cluster, train-step',
  async run(argv) {
    const { values } = parse('step', argv, configOptions);
    if (values.help) return void process.stdout.write(help('Usage: empo step [options]', 'Runs sample, cluster and train-step for the next step.'));
    const config = configFrom(values);
    await runOneStep(config);
  },
};

export const train: Command = {
  summary: 'run EMPO until the run has N steps, in one process (resumes from the latest checkpoint)',
  async run(argv) {
    const { values } = parse('train', argv, { ...configOptions, steps: { type: 'string' } });
    if (values.help) return void process.stdout.write(help('Usage: empo train --steps N [options]',
      'Runs sample -> cluster -> update until the run has N steps, keeping the model in memory; every\nstage writes its Parquet files, checkpoints every trainer.save_steps steps and at the end.\nWhen the run folder has checkpoints, it resumes from the latest complete one.',
      '  --steps N          total steps the run should have (default: trainer.max_steps)'));
    const config = configFrom(values);
    const { trainLoop } = await import('../loop.ts');
    await trainLoop(config, positiveInt('--steps', values.steps, config.trainer.max_steps));
  },
};

async function runOneStep(config: import('@empo/core').EmpoConfig): Promise<void> {
  const [{ runSampler }, { runClusterer }, { runTrainer }] = await Promise.all([
    import('@empo/sampler'), import('@empo/clusterer'), import('@empo/trainer'),
  ]);
  const { step } = await runSampler(config);
  await runClusterer(config, step);
  await runTrainer(config);
}

export const evaluate: Command = {
  summary: 'greedy accuracy of a checkpoint on the labeled evaluation set',
  async run(argv) {
    const { values } = parse('eval', argv, { ...configOptions, step: { type: 'string' }, json: { type: 'boolean' } });
    if (values.help) return void process.stdout.write(help('Usage: empo eval [--step K] [--json] [options]',
      'Evaluates the checkpoint of step K (default: the latest; 0 = the base model) on eval_queries,\nwriting <run>/eval/step-K/samples.parquet and summary.json.',
      '  --step K           checkpoint to evaluate\n  --json             print the summary as JSON on stdout'));
    const config = configFrom(values);
    const { runEvaluator } = await import('@empo/evaluator');
    const summary = await runEvaluator(config, values.step === undefined ? undefined : positiveInt('--step', values.step, 0));
    if (values.json) process.stdout.write(JSON.stringify(summary) + '\n');
  },
};
