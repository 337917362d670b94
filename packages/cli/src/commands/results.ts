import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import {
  EmpoError, RunLayout, evalSamplesSpec, hashPath, log, readParquetRows, stepName, writeFileAtomic, writeJsonAtomic, type EvalSampleRow,
} from '@empo/core';
import type { EvalComparison } from '@empo/evaluator';
import { evalInputsKey } from '@empo/evaluator/inputs';
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

interface Figures {
  greedy_accuracy: number; mean_accuracy: number | null; maj_accuracy: number | null; semantic_entropy: number | null; questions?: number;
}
interface RunFigures extends Figures { method: Method; seed: number; evalDir: string; step: number }

const points = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}`;


/**
 * Per seed, each method's change from the base model on the same questions with paired 95%
 * intervals, and the share of gold GRPO's mean-accuracy gain that EMPO recovers.
 */
function changeTable(raw: readonly RunFigures[], chosen: readonly Method[], k: number, evaluator: typeof import('@empo/evaluator')) {
  const { compareScores, formatDifference: withInterval, questionScores } = evaluator;
  const read = (dir: string) => questionScores(readParquetRows<EvalSampleRow>(join(dir, 'samples.parquet'), evalSamplesSpec));
  const rows: { method: Method; seed: number; step: number; change: EvalComparison }[] = [];
  for (const r of raw) {
    if (r.method === 'base') continue;
    const base = raw.find((b) => b.method === 'base' && b.seed === r.seed);
    if (!base) continue;
    rows.push({ method: r.method, seed: r.seed, step: r.step, change: compareScores(read(base.evalDir), read(r.evalDir), `${base.evalDir} and ${r.evalDir}`) });
  }
  if (!rows.length) return { rows, table: '(needs the base method in --methods)', notes: '' };
  const table = [
    `| method | seed | steps | greedy | mean@${k} | maj@${k} |`, '|---|---|---|---|---|---|',
    ...chosen.flatMap((m) => rows.filter((r) => r.method === m).map((r) =>
      `| ${m} | ${r.seed} | ${r.step} | ${withInterval(r.change.greedy_accuracy)} | ${withInterval(r.change.mean_accuracy)} | ${withInterval(r.change.maj_accuracy)} |`)),
  ].join('\n');
  const meanGain = (m: Method) => {
    const xs = rows.filter((r) => r.method === m && r.change.mean_accuracy).map((r) => r.change.mean_accuracy!.delta);
    return xs.length ? stats(xs).mean : null;
  };
  const greedyGain = (m: Method) => {
    const xs = rows.filter((r) => r.method === m).map((r) => r.change.greedy_accuracy.delta);
    return xs.length ? stats(xs).mean : null;
  };
  const notes: string[] = [];
  const empo = meanGain('empo');
  const gold = meanGain('grpo_gold');
  if (empo !== null && gold !== null && gold > 0) {
    notes.push(`- EMPO recovers ${((empo / gold) * 100).toFixed(0)}% of the mean@${k} gain of GRPO with gold answers (${points(empo)} against ${points(gold)} points, seed means).`);
  }
  const empoRows = rows.filter((r) => r.method === 'empo');
  if (empoRows.length) {
    const beats = empoRows.filter((r) => (r.change.mean_accuracy?.delta ?? 0) > 0).length;
    const below = empoRows.filter((r) => r.change.greedy_accuracy.ci95[1] < 0).length;
    notes.push(`- EMPO beats the base on mean@${k} in ${beats} of ${empoRows.length} seeds; its greedy accuracy changes by ${points(greedyGain('empo')!)} points on average, ` +
      `and falls beyond the evaluation noise (interval entirely below 0) in ${below} of ${empoRows.length} seeds.`);
  }
  return { rows, table, notes: notes.join('\n') };
}

const bin = resolve(import.meta.dirname, '../../bin/empo.mjs');

/** In --out, the line after which hand-written notes start: a rerun keeps them. */
export const NOTES_MARKER = '<!-- notes: everything below this line is kept when `empo results` rewrites the file -->';

function runEmpo(args: string[], label: string): Promise<void> {
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
      methods: { type: 'string' }, fresh: { type: 'boolean' },
    });
    if (values.help) {
      return void process.stdout.write(`Usage: empo results [--seeds 3] [--steps 20] [--jobs N] [--out RESULTS.md] [--methods a,b] [--fresh]

Trains and evaluates, for each seed: ${Object.entries(methods).map(([m, d]) => `\n  ${m.padEnd(10)} ${d}`).join('')}
with the same budget (steps x questions_per_step x num_generations sequences; SFT takes as
many optimizer steps of as many sequences), each in its own run folder results-<method>-s<seed>,
--jobs processes at a time (default: the number of cores). Finished runs are reused, so an
interrupted command resumes (the log and --out say which runs were reused, and which were
trained by an earlier command and only evaluated again); --fresh deletes the
chosen methods' and seeds' run folders first, to recompute them (after a code change, or a
change of the task files: a run whose training questions, gold solutions or base model changed
stops with an error until then; an evaluation made from other questions or settings is simply
made again). Writes the table
(mean and sample std over seeds) to --out, keeping the hand-written notes that follow the line
${NOTES_MARKER}
in the file it replaces, and the raw figures to data/runs/results.json.
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
    const runName = (t: { method: Method; seed: number }) => `results-${t.method}-s${t.seed}`;
    if (values.fresh) {
      const earlier = tasks.map((t) => resolve(config.runs_dir, runName(t))).filter((dir) => existsSync(dir));
      for (const dir of earlier) rmSync(dir, { recursive: true, force: true });
      log.info(`results: --fresh: removed ${earlier.length} earlier run folder(s)${earlier.length ? `: ${earlier.map((d) => basename(d)).join(', ')}` : ''}`);
    }
    let reusedRuns = 0;
    let reusedTrainings = 0; // runs evaluated now from a model an earlier command trained
    const started = Date.now();
    const figures = await pool(tasks.map(({ method, seed }) => async (): Promise<Omit<RunFigures, 'method' | 'seed'>> => {
      const name = runName({ method, seed });
      let ran = false; // whether this command computed anything of the run (else it was reused)
      let trained = method === 'base'; // whether the model evaluated is this command's (the base model is nobody's)
      const run = (cmd: string[], label: string) => ((ran = true), runEmpo(cmd, label));
      const args = ['--run', name, '--seed', String(seed), ...common];
      const layout = new RunLayout(resolve(config.runs_dir), name, resolve(config.model));
      let evalArgs = [...args];
      let evalStep = steps;
      if (method === 'base') {
        evalStep = 0;
      } else if (method === 'sft') {
        const model = join(layout.root, 'sft-model');
        const sftLog = join(model, 'sft_log.json');
        if (existsSync(sftLog)) {
          const made = JSON.parse(readFileSync(sftLog, 'utf8')) as { data_sha256?: string; init_sha256?: string | null };
          if (made.data_sha256 !== hashPath(goldSolutions) || made.init_sha256 !== hashPath(config.model)) {
            throw new EmpoError(`${name}: ${sftLog} was trained from other gold solutions or another base model than ${goldSolutions} and ${config.model} (or records neither); --fresh recomputes it`);
          }
        } else {
          trained = true;
          await run(['sft', '--init', config.model, '--data', goldSolutions, '--out', model, '--steps', String(steps), '--batch-size', String(sequences),
            '--lr', String(config.trainer.learning_rate), '--warmup', '0', '--schedule', 'constant', '--weight-decay', '0', '--held-out', '64',
            '--eval-every', String(steps), '--seed', String(seed), ...(values.backend ? ['--backend', values.backend] : [])], name);
        }
        evalArgs = [...args, '--set', `model=${JSON.stringify(model)}`];
        evalStep = 0;
      } else {
        const extra = ['--set', `clusterer.reward="${reward[method]}"`, ...(method === 'grpo_gold' ? ['--set', `clusterer.gold_answers=${JSON.stringify(goldAnswers)}`] : [])];
        const before = layout.latestCheckpointStep();
        await runEmpo(['train', '--steps', String(steps), ...args, ...extra], name); // resumes, or only reads a finished run
        evalStep = layout.latestCheckpointStep(); // earlier than --steps when a collapse guard stopped the run
        if (evalStep !== before) ran = trained = true;
      }
      const summaryPath = join(layout.root, 'eval', stepName(evalStep), 'summary.json');
      // An earlier evaluation is reused only when it was made from the same questions and settings.
      const stored = existsSync(summaryPath) ? (JSON.parse(readFileSync(summaryPath, 'utf8')) as { inputs_key?: string }) : null;
      if (stored?.inputs_key !== evalInputsKey({ ...config, seed })) await run(['eval', '--step', String(evalStep), ...evalArgs], name);
      if (!ran) reusedRuns++;
      else if (!trained) reusedTrainings++;
      const what = !ran ? 'reused from an earlier command' : trained ? 'done' : 'done (evaluated now; trained by an earlier command)';
      log.info(`results: ${name} ${what} (${((Date.now() - started) / 1000).toFixed(0)}s)`);
      return { ...(JSON.parse(readFileSync(summaryPath, 'utf8')) as Figures), evalDir: dirname(summaryPath), step: evalStep };
    }), jobs);

    const raw = tasks.map((t, i) => ({ ...t, ...figures[i]! }));
    const changes = changeTable(raw, chosen, config.evaluator.num_samples, await import('@empo/evaluator'));
    writeJsonAtomic(resolve(config.runs_dir, 'results.json'), { steps, seeds, config, runs: raw, changes: changes.rows });
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
    // Hand-written notes below the marker line of the file being replaced are kept.
    const previous = existsSync(out) ? readFileSync(out, 'utf8') : '';
    const notes = previous.includes(NOTES_MARKER) ? `\n${NOTES_MARKER}${previous.split(NOTES_MARKER)[1]}` : '';
    writeFileAtomic(out, `# The paper's table in miniature

Produced by \`${command}\` in ${((Date.now() - started) / 60000).toFixed(0)} minutes on this machine
(${availableParallelism()} cores, ${jobs} runs at a time${reusedRuns ? `; ${reusedRuns} of ${tasks.length} runs reused from an earlier command, --fresh recomputes them` : ''}${
  reusedTrainings ? `; ${reusedTrainings} of ${tasks.length} runs trained by an earlier command and evaluated again, --fresh retrains them` : ''}). Base model \`${config.model}\`; ${steps} steps of
${config.sampler.questions_per_step} questions x ${config.sampler.num_generations} samples for every RL method
(SFT: ${steps} optimizer steps of ${sequences} gold solutions); evaluation on ${config.eval_queries}
(held out, never trained on) with greedy decoding and k = ${k} samples at temperature ${config.evaluator.temperature}.
Mean ± sample standard deviation over ${seeds} seeds. Raw figures: \`${config.runs_dir}/results.json\`.

${table}

## Change from the base model, per seed

Each trained model minus the base model of the same seed on the same ${raw.find((r) => r.method === 'base')?.questions ?? ''} held-out questions, in points,
with the 95% interval of the evaluation noise (paired by question: a change inside the
interval is not distinguishable from sampling the evaluation again).

${changes.table}
${changes.notes}
${notes}`);
    process.stdout.write(`${table}\n\n${changes.table}\n${changes.notes}\nwritten to ${out}\n`);
  },
};
