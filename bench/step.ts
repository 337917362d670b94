/**
 * One full EMPO step on the bundled tiny default, timed by stage: sampling tokens/s (KV cache,
 * questions x G), training tokens/s (forward + backward + update), clustering, and peak memory.
 *   npm run bench -- [--json] [--steps N] [--set key=value ...]
 * Runs in a temporary run folder; the bundled files are only read.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunLayout, loadConfig, selectBackend } from '@empo/core';
import { clusterRollouts } from '@empo/clusterer';
import { Policy } from '@empo/policy';
import { questionsForStep, readTrainQueries, sampleRollouts } from '@empo/sampler';
import { TrainerSession } from '@empo/trainer';

process.env.EMPO_QUIET = '1';
const args = process.argv.slice(2);
const json = args.includes('--json');
const stepsArg = args.indexOf('--steps');
const steps = stepsArg >= 0 ? Number(args[stepsArg + 1]) : 3;
const overrides = args.flatMap((a, i) => (a === '--set' ? [args[i + 1]!] : []));
const config = loadConfig({ overrides: [...overrides, `runs_dir=${JSON.stringify(mkdtempSync(join(tmpdir(), 'empo-bench-')))}`, 'run="bench"'] });

let peakRss = 0;
const sampleMemory = () => { peakRss = Math.max(peakRss, process.memoryUsage().rss); };
const timer = setInterval(sampleMemory, 50);

const backend = await selectBackend(config.backend, true);
const layout = RunLayout.fromConfig(config);
const queries = readTrainQueries(config);
const session = await TrainerSession.open(config, layout, 0);
const policy: Policy = session.policy;
const perStep: Record<string, number>[] = [];
for (let step = 1; step <= steps; step++) {
  const t0 = performance.now();
  const questions = questionsForStep(queries, step, config.sampler.questions_per_step, config.seed);
  const rollouts = sampleRollouts(policy, questions, config.sampler, { step, seed: config.seed });
  const t1 = performance.now();
  const clusters = await clusterRollouts(rollouts, config.clusterer, config.seed, step);
  const t2 = performance.now();
  const metrics = session.train(rollouts, clusters);
  const t3 = performance.now();
  sampleMemory();
  const sampled = rollouts.reduce((n, r) => n + r.completion_ids.length, 0);
  perStep.push({
    step, sample_s: (t1 - t0) / 1000, cluster_s: (t2 - t1) / 1000, train_s: (t3 - t2) / 1000, total_s: (t3 - t0) / 1000,
    sampled_tokens: sampled, sample_tokens_per_s: sampled / ((t1 - t0) / 1000), train_tokens_per_s: metrics.tokens_per_second,
    trained_sequences: metrics.kept_fraction * rollouts.length,
  });
}
clearInterval(timer);
session.dispose();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const result = {
  backend,
  model: config.model,
  config: { sampler: config.sampler, trainer: { micro_batch_size: config.trainer.micro_batch_size, loss_type: config.trainer.loss_type } },
  steps: perStep,
  median: Object.fromEntries(['sample_s', 'cluster_s', 'train_s', 'total_s', 'sample_tokens_per_s', 'train_tokens_per_s'].map((k) => [k, median(perStep.map((s) => s[k]!))])),
  peak_rss_mb: Math.round(peakRss / 2 ** 20),
};
if (json) console.log(JSON.stringify(result, null, 2));
else {
  console.log(`backend ${backend}, ${config.sampler.questions_per_step} questions x ${config.sampler.num_generations} samples, ${steps} steps`);
  for (const s of perStep) console.log(`step ${s.step}: sample ${s.sample_s!.toFixed(2)}s (${Math.round(s.sample_tokens_per_s!)} tok/s), cluster ${s.cluster_s!.toFixed(3)}s, train ${s.train_s!.toFixed(2)}s (${Math.round(s.train_tokens_per_s!)} tok/s), total ${s.total_s!.toFixed(2)}s`);
  console.log(`median: ${JSON.stringify(result.median)}; peak RSS ${result.peak_rss_mb} MB`);
}
