import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { EmpoError, RunLayout, log, stepName, writeFileAtomic, writeJsonAtomic } from '@empo/core';
import { configFrom, configHelp, configOptions, parse, positiveInt } from '../args.ts';
import type { Command } from './types.ts';

/** The paper's comparison: what each method changes relative to the EMPO run. */
const methods = {
  base: 'the untouched base model',
  sft: 'SFT on gold solutions of the training questions (labels)',
  grpo_gold: 'GRPO with gold-answer reward (labels)',
  ttrl: 'majority-vote reward (TTRL), no labels',
  random: 'random reward, no labels',
  empo: 'EMPO: semantic-cluster-share reward, no labels',
} as const;
type Method = keyof typeof methods;

interface Figures { greedy_accuracy: number; mean_accuracy: number | null; maj_accuracy: number | null; semantic_entropy: number | null }

const bin = resolve(import.meta.dirname, '../../bin/empo.mjs');

function run(args: string[], label: string): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, EMPO_QUIET: '1' } });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', fail);
    child.on('exit', (code) => (code === 0 ? done() : fail(new Error(`${label}: empo ${args.join(' ')} exited with ${code}\n${stderr.slice(-2000)}`))));
  });
}

/** Run async jobs with at most `limit` at once. */
async function pool<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]!();
    }
  }));
  return results;
}

function stats(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

export const results: Command = {
  summary: "the paper's table in miniature: base, SFT, GRPO (gold), TTRL, random and EMPO over several seeds -> RESULTS.md",
  async run(argv) {
    const { values } = parse('results', argv, {
      ...configOptions, seeds: { type: 'string' }, steps: { type: 'string' }, jobs: { type: 'string' }, out: { type: 'string' },
      methods: { type: 'string' },
    });
    if (values.help) {
      return void process.stdout.write(`Usage: empo results [--seeds 3] [--steps 20] [--jobs N] [--out RESULTS.md] [--methods a,b]

Trains and evaluates, for each seed: ${Object.entries(methods).map(([m, d]) => `\n  ${m.padEnd(10)} ${d}`).join('')}
with the same budget (steps x questions_per_step x num_generations sequences; SFT takes as
many optimizer steps of as many sequences), each in its own run folder results-<method>-s<seed>,
--jobs processes at a time (default: the number of cores). Finished runs are reused, so an
interrupted command resumes. Writes the table (mean and sample std over seeds) to --out and the
raw figures to data/runs/results.json.
${configHelp}
`);
    }
    const config = configFrom(values);
    const seeds = positiveInt('--seeds', values.seeds, 3);
    const steps = positiveInt('--steps', values.steps, 20);
    const jobs = positiveInt('--jobs', values.jobs, availableParallelism());
    const chosen = (values.methods?.split(',') ?? Object.keys(methods)) as Method[];
    for (const m of chosen) if (!(m in methods)) throw new EmpoError(`--methods: unknown method '${m}' (known: ${Object.keys(methods).join(', ')})`);
    const goldAnswers = join(resolve(config.train_queries, '..'), 'train-labeled.parquet');
    const goldSolutions = join(resolve(config.train_queries, '..'), 'sft-gold.parquet');
    if ((chosen.includes('grpo_gold') || chosen.includes('sft')) && (!existsSync(goldAnswers) || !existsSync(goldSolutions))) {
      throw new EmpoError(`the supervised baselines need ${goldAnswers} and ${goldSolutions} (npx empo gen-data writes them)`);
    }
    const common = [...(values.config ? ['--config', values.config] : []), ...(values.set ?? []).flatMap((s) => ['--set', s]),
      ...(values.backend ? ['--backend', values.backend] : [])];
    const reward: Record<string, string> = { grpo_gold: 'gold', ttrl: 'majority', random: 'random', empo: 'empo' };
    const sequences = config.sampler.questions_per_step * config.sampler.num_generations;

    const tasks = seeds > 0 ? chosen.flatMap((method) => Array.from({ length: seeds }, (_, i) => ({ method, seed: i + 1 }))) : [];
    const started = Date.now();
    const figures = await pool(tasks.map(({ method, seed }) => async (): Promise<Figures> => {
      const runName = `results-${method}-s${seed}`;
      const args = ['--run', runName, '--seed', String(seed), ...common];
      const layout = new RunLayout(resolve(config.runs_dir), runName, resolve(config.model));
      let evalArgs = [...args];
      let evalStep = steps;
      if (method === 'base') {
        evalStep = 0;
      } else if (method === 'sft') {
        const model = join(layout.root, 'sft-model');
        if (!existsSync(join(model, 'sft_log.json'))) {
          await run(['sft', '--init', config.model, '--data', goldSolutions, '--out', model, '--steps', String(steps), '--batch-size', String(sequences),
            '--lr', String(config.trainer.learning_rate), '--warmup', '0', '--schedule', 'constant', '--weight-decay', '0', '--held-out', '64',
            '--eval-every', String(steps), '--seed', String(seed), ...(values.backend ? ['--backend', values.backend] : [])], runName);
        }
        evalArgs = [...args, '--set', `model=${JSON.stringify(model)}`];
        evalStep = 0;
      } else {
        const extra = ['--set', `clusterer.reward="${reward[method]}"`, ...(method === 'grpo_gold' ? ['--set', `clusterer.gold_answers=${JSON.stringify(goldAnswers)}`] : [])];
        await run(['train', '--steps', String(steps), ...args, ...extra], runName);
      }
      const summaryPath = join(layout.root, 'eval', stepName(evalStep), 'summary.json');
      if (!existsSync(summaryPath)) await run(['eval', '--step', String(evalStep), ...evalArgs], runName);
      log.info(`results: ${runName} done (${((Date.now() - started) / 1000).toFixed(0)}s)`);
      return JSON.parse(readFileSync(summaryPath, 'utf8')) as Figures;
    }), jobs);

    const raw = tasks.map((t, i) => ({ ...t, ...figures[i]! }));
    writeJsonAtomic(resolve(config.runs_dir, 'results.json'), { steps, seeds, config, runs: raw });
    const fmt = (method: Method, key: keyof Figures, percent: boolean) => {
      const xs = raw.filter((r) => r.method === method).map((r) => r[key]).filter((x): x is number => x !== null);
      if (!xs.length) return '–';
      const { mean, std } = stats(xs);
      return percent ? `${(mean * 100).toFixed(1)} ± ${(std * 100).toFixed(1)}` : `${mean.toFixed(3)} ± ${std.toFixed(3)}`;
    };
    const k = config.evaluator.num_samples;
    const lines = [
      '| method | labels | greedy acc. (%) | mean@' + k + ' (%) | maj@' + k + ' (%) | semantic entropy |',
      '|---|---|---|---|---|---|',
      ...chosen.map((m) => `| ${methods[m]} | ${m === 'sft' || m === 'grpo_gold' ? 'yes' : 'no'} | ${fmt(m, 'greedy_accuracy', true)} | ${fmt(m, 'mean_accuracy', true)} | ${fmt(m, 'maj_accuracy', true)} | ${fmt(m, 'semantic_entropy', false)} |`),
    ];
    const table = lines.join('\n');
    const out = values.out ?? 'RESULTS.md';
    const command = `npx empo results ${argv.join(' ')}`.trim();
    writeFileAtomic(out, `# The paper's table in miniature

Produced by \`${command}\` in ${((Date.now() - started) / 60000).toFixed(0)} minutes on this machine
(${availableParallelism()} cores, ${jobs} runs at a time). Base model \`${config.model}\`; ${steps} steps of
${config.sampler.questions_per_step} questions x ${config.sampler.num_generations} samples for every RL method
(SFT: ${steps} optimizer steps of ${sequences} gold solutions); evaluation on ${config.eval_queries}
(held out, never trained on) with greedy decoding and k = ${k} samples at temperature ${config.evaluator.temperature}.
Mean ± sample standard deviation over ${seeds} seeds. Raw figures: \`${config.runs_dir}/results.json\`.

${table}
`);
    process.stdout.write(`${table}\n\nwritten to ${out}\n`);
  },
};
