/**
 * How much faster can two cores make one EMPO step on this machine? Two independent copies of the single-worker
 * step (bench/step.ts --workers 1, separate processes) run at the same time do exactly the work of the 2-worker
 * step with no communication and no serial part: if each copy then takes C seconds per step where one alone
 * takes A, no split of one step over two threads can beat C / 2, so 2A / C is the ceiling of the speed-up.
 * Each round runs: one copy alone, two copies at once, and the real 2-worker step (bench/step.ts --workers 2),
 * so that all three see the same machine load; rounds repeat to average the load of a shared machine out.
 *   npx tsx bench/ceiling.ts [--json] [--rounds N] [--steps N] [--warmup W] [--set key=value ...]
 * --warmup W: each run first takes W steps that the medians leave out (bench/step.ts --warmup; the worker threads
 * compile their code over about ten steps, a single-worker process over fewer).
 * Reported: median step times (total, sample, train) of each case over all rounds' steps, the ceiling 2A/C,
 * the 2-worker speed-up A/W, and its share of the ceiling.
 */
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const json = args.includes('--json');
const rounds = Number(flag('--rounds') ?? 3);
const steps = Number(flag('--steps') ?? 5);
const warmup = Number(flag('--warmup') ?? 0);
const sets = args.flatMap((a, i) => (a === '--set' ? ['--set', args[i + 1]!] : []));
for (const [name, v] of [['--rounds', rounds], ['--steps', steps]] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`bench/ceiling.ts: ${name} must be a positive integer`);
}
if (!Number.isInteger(warmup) || warmup < 0) throw new Error('bench/ceiling.ts: --warmup must be a non-negative integer');
const STEP = fileURLToPath(new URL('./step.ts', import.meta.url));

interface StepTimes {
  total_s: number;
  sample_s: number;
  train_s: number;
}

/** One bench/step.ts run; resolves with its per-step times. */
function stepRun(workers: number): Promise<StepTimes[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', STEP, '--json', '--workers', String(workers), '--steps', String(steps), '--warmup', String(warmup), ...sets], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`bench/step.ts --workers ${workers} exited with ${code}:\n${err.slice(-2000)}`));
      const result = JSON.parse(out) as { runs: { steps: StepTimes[] }[] };
      resolve(result.runs[0]!.steps.slice(warmup));
    });
  });
}

const cases = { alone: [] as StepTimes[], concurrent: [] as StepTimes[], workers2: [] as StepTimes[] };
for (let r = 1; r <= rounds; r++) {
  process.stderr.write(`round ${r}/${rounds}: one copy alone, two copies at once, 2 workers\n`);
  cases.alone.push(...(await stepRun(1)));
  const [a, b] = await Promise.all([stepRun(1), stepRun(1)]);
  cases.concurrent.push(...a!, ...b!);
  cases.workers2.push(...(await stepRun(2)));
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const summary = (xs: StepTimes[]) => ({
  total_s: median(xs.map((s) => s.total_s)),
  sample_s: median(xs.map((s) => s.sample_s)),
  train_s: median(xs.map((s) => s.train_s)),
  steps: xs.length,
});
const alone = summary(cases.alone);
const concurrent = summary(cases.concurrent);
const workers2 = summary(cases.workers2);
const ratio = (k: keyof StepTimes) => ({
  ceiling: (2 * alone[k]) / concurrent[k],
  speedup: alone[k] / workers2[k],
  share_of_ceiling: alone[k] / workers2[k] / ((2 * alone[k]) / concurrent[k]),
});
const result = {
  cpus: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
  command: `npx tsx bench/ceiling.ts ${args.join(' ')}`.trim(),
  rounds,
  steps_per_run: steps,
  warmup_steps_per_run: warmup,
  alone,
  concurrent,
  workers2,
  total: ratio('total_s'),
  sample: ratio('sample_s'),
  train: ratio('train_s'),
};
if (json) console.log(JSON.stringify(result, null, 2));
else {
  const f = (x: number) => x.toFixed(2);
  console.log(`${result.cpus}; ${rounds} rounds of ${steps} steps${warmup ? ` (after ${warmup} warm-up steps)` : ''}; medians over all timed steps`);
  console.log('| | total, s | sample, s | train, s |');
  console.log('| --- | ---: | ---: | ---: |');
  console.log(`| one single-worker copy alone (A) | ${f(alone.total_s)} | ${f(alone.sample_s)} | ${f(alone.train_s)} |`);
  console.log(`| each of two copies at once (C) | ${f(concurrent.total_s)} | ${f(concurrent.sample_s)} | ${f(concurrent.train_s)} |`);
  console.log(`| 2 workers (W) | ${f(workers2.total_s)} | ${f(workers2.sample_s)} | ${f(workers2.train_s)} |`);
  console.log(`| ceiling 2A/C | ${f(result.total.ceiling)}x | ${f(result.sample.ceiling)}x | ${f(result.train.ceiling)}x |`);
  console.log(`| 2-worker speed-up A/W | ${f(result.total.speedup)}x | ${f(result.sample.speedup)}x | ${f(result.train.speedup)}x |`);
  console.log(`| share of the ceiling | ${(100 * result.total.share_of_ceiling).toFixed(0)}% | ${(100 * result.sample.share_of_ceiling).toFixed(0)}% | ${(100 * result.train.share_of_ceiling).toFixed(0)}% |`);
}
