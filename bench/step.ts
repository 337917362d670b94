/**
 * Full EMPO steps on the bundled tiny default, timed by stage: sampling tokens/s (KV cache, questions x G),
 * clustering, training tokens/s (forward + backward + AdamW), the whole step, and peak memory. Each step runs the
 * stage functions `empo train` runs (sampleStepParallel, clusterStep, TrainerSession.trainParallel), so its
 * rollouts.parquet, clusters.parquet and metrics.parquet are encoded and written as in a real run; the
 * checkpoints `empo train` writes every trainer.save_steps steps and its collapse guard are left out.
 *   npm run bench -- [--json] [--steps N] [--warmup W] [--workers N[,M...]] [--timeline] [--set key=value ...]
 * --workers 1,2 runs one trainer per worker count, interleaved step by step (step 1 with 1 worker, step 1 with
 * 2, step 2 with 1, ...), so that both see the same machine load; since results do not depend on the worker
 * count, both do the same work, and the benchmark checks that their metrics are identical. Default: the
 * config's `workers` (null: one per core). Runs in a temporary run folder, removed at the end; the bundled files
 * are only read.
 * Reported: per step and as medians, the time of each stage, sampling tokens/s (completion tokens), training
 * tokens/s (prompt + completion tokens of the trained sequences), live tensors after each step; worker start-up
 * time; peak RSS of the process (all threads); the config used; on Linux, the CPU time of each thread kind per step
 * (the parent, each worker, and the rest: V8's compiler and GC threads), and how long the workers waited for a core
 * (bench/threads.ts); with workers, how long they were without a task (PolicyWorkers.taskMsByThread), and for each
 * speed-up the workers' CPU for the same work against the first run's and the share of their cores' time they
 * computed (n cores' wall time = their CPU + waits for a core + time without a task). Each speed-up is given as
 * the ratio of the median step times, and from the steps paired one by one: the median of the per-step ratios and
 * the ratio of the timed steps' total times. --warmup W runs W steps first that the medians and speed-ups leave
 * out (they are printed, and checked for identical metrics): each worker thread is a V8 isolate that compiles its
 * own optimized code, which takes about ten steps here. Defaults: --steps 8 --warmup 8. --timeline also
 * prints, per step with workers, every task each worker ran, from hand-out to reply in ms from the step's start
 * (PolicyWorkers.recordTasks), and how far apart the workers' last tasks of each stage ended (the faster one's wait).
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunLayout, loadConfig, selectBackend, type EmpoConfig, type FileWriter, type MetricsRow } from '@empo/core';
import { clusterStep, readGoldAnswers } from '@empo/clusterer';
import { PolicyWorkers, defaultWorkerCount } from '@empo/policy';
import { readTrainQueries, sampleStepParallel } from '@empo/sampler';
import { TrainerSession, trainerTaskModule } from '@empo/trainer';
import { splitThreadTimes, threadTimes, type ThreadSplit } from './threads.ts';

process.env.EMPO_QUIET = '1';
const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const json = args.includes('--json');
const timeline = args.includes('--timeline');
// defaults: steady state (each worker thread compiles its code over about ten steps; BENCHMARKS.md, sixth round)
const timed = Number(flag('--steps') ?? 8);
const warmup = Number(flag('--warmup') ?? 8);
if (!Number.isInteger(timed) || timed < 1) throw new Error(`bench/step.ts: --steps must be a positive integer, got ${flag('--steps')}`);
if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`bench/step.ts: --warmup must be a non-negative integer, got ${flag('--warmup')}`);
const steps = warmup + timed;
const overrides = args.flatMap((a, i) => (a === '--set' ? [args[i + 1]!] : []));
const runsDir = mkdtempSync(join(tmpdir(), 'empo-bench-'));
const config = loadConfig({ overrides: [...overrides, `runs_dir=${JSON.stringify(runsDir)}`, 'run="bench"'] });

let peakRss = 0;
// rss() alone: memoryUsage() also walks V8's heap statistics, in this thread, every 50 ms of the timed steps
const sampleMemory = () => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
};
const timer = setInterval(sampleMemory, 50);

const backend = await selectBackend(config.backend, true);
const workerCounts = (flag('--workers') ?? String(config.workers ?? defaultWorkerCount(backend))).split(',').map(Number);
const queries = readTrainQueries(config);
const goldAnswers = readGoldAnswers(config); // undefined unless the supervised baseline asks for it, as in trainLoop

/** A task of a step's timeline (--timeline), in ms from the step's start. */
interface StepTask {
  thread: number;
  task: string;
  start_ms: number;
  end_ms: number;
}

interface Runner {
  workers: number;
  /** The config with this runner's own run folder. */
  config: EmpoConfig;
  session: TrainerSession;
  pool: PolicyWorkers | null;
  startup_s: number;
  steps: Record<string, number>[];
  /** Per step, CPU time by thread (Linux only; see bench/threads.ts). */
  threads: ThreadSplit[];
  metrics: MetricsRow[];
  /** Per step (--timeline, with workers): its tasks. */
  tasks: StepTask[][];
}
const runners: Runner[] = [];
for (const [i, n] of workerCounts.entries()) {
  const runConfig: EmpoConfig = { ...config, run: `bench-${i}` };
  const layout = RunLayout.fromConfig(runConfig);
  const session = await TrainerSession.open(runConfig, layout, 0);
  const t0 = performance.now();
  const pool = n > 1 ? await PolicyWorkers.start({ workers: n, backend, model: session.policy, taskModules: [trainerTaskModule] }) : null;
  if (timeline) pool?.recordTasks();
  runners.push({ workers: n, config: runConfig, session, pool, startup_s: (performance.now() - t0) / 1000, steps: [], threads: [], metrics: [], tasks: [] });
}

/**
 * How far apart (s) the workers' last tasks of one kind ('generate' counts 'generate.resume' too) ended in a step:
 * how long the first to finish waited for the last (NaN when not every worker ran one).
 */
function endGap(tasks: StepTask[], task: string, workers: number): number {
  const last = new Map<number, number>();
  for (const t of tasks) if (t.task === task || t.task.startsWith(`${task}.`)) last.set(t.thread, Math.max(last.get(t.thread) ?? -Infinity, t.end_ms));
  return last.size === workers ? (Math.max(...last.values()) - Math.min(...last.values())) / 1000 : Number.NaN;
}

for (let step = 1; step <= steps; step++) {
  for (const r of runners) {
    const { session, pool } = r;
    const c0 = process.cpuUsage();
    const threads0 = threadTimes();
    const busy0 = pool?.busyMs ?? 0;
    const tasks0 = pool?.taskMsByThread ?? [];
    pool?.takeTaskLog(); // from here on, this step's tasks
    const t0 = performance.now();
    // the stages as `empo train` runs them (cli's trainLoop): their rollouts.parquet and clusters.parquet are
    // handed to the session, which encodes them during the update and writes them in the background
    const write: FileWriter = (path, encode) => session.writeWithStep(path, encode);
    const rollouts = await sampleStepParallel(session.policy, pool, queries, r.config, step, write);
    const t1 = performance.now();
    const clusters = await clusterStep(rollouts, r.config, step, { goldAnswers, write });
    const t2 = performance.now();
    const metrics = await session.trainParallel(rollouts, clusters, pool);
    const t3 = performance.now();
    const cpu = process.cpuUsage(c0);
    const threads = splitThreadTimes(threads0, threadTimes(), pool?.osThreadIds ?? []);
    sampleMemory();
    const tasks = (pool?.takeTaskLog() ?? []).map((t): StepTask => ({ thread: t.thread, task: t.task, start_ms: t.start - t0, end_ms: t.end - t0 }));
    if (timeline && pool) r.tasks.push(tasks);
    const sampled = rollouts.reduce((n, x) => n + x.completion_ids.length, 0);
    r.metrics.push(metrics);
    r.steps.push({
      step, sample_s: (t1 - t0) / 1000, cluster_s: (t2 - t1) / 1000, train_s: (t3 - t2) / 1000, total_s: (t3 - t0) / 1000,
      // CPU seconds of all threads / wall seconds: how many cores the step had (other load on a shared machine shows here)
      cores_used: (cpu.user + cpu.system) / 1e6 / ((t3 - t0) / 1000),
      // with workers: the part of the step during which no worker had a task (this thread's serial work)
      serial_s: pool ? (t3 - t0 - (pool.busyMs - busy0)) / 1000 : (t3 - t0) / 1000,
      // with workers: per worker, the part of the step it had no task (the serial part, plus waiting for the
      // slowest worker at the end of sampling and of each update iteration), summed over the workers
      ...(pool && { workers_idle_s: pool.taskMsByThread.reduce((n, ms, i) => n + (t3 - t0 - (ms - tasks0[i]!)), 0) / 1000 }),
      ...(timeline && pool && { sample_end_gap_s: endGap(tasks, 'generate', pool.size), train_end_gap_s: endGap(tasks, 'trainer.gradient', pool.size) }),
      sampled_tokens: sampled, sample_tokens_per_s: sampled / ((t1 - t0) / 1000), train_tokens_per_s: metrics.tokens_per_second,
      trained_sequences: Math.round(metrics.kept_fraction * rollouts.length),
      tensors: tf.memory().numTensors, // this thread's live tensors after the step: flat from step to step
      ...(threads && {
        main_cpu_s: threads.main_cpu_s,
        workers_cpu_s: threads.worker_cpu_s.reduce((a, b) => a + b, 0),
        workers_wait_s: threads.worker_wait_s.reduce((a, b) => a + b, 0),
        background_cpu_s: threads.background_cpu_s,
      }),
    });
    if (threads) r.threads.push(threads);
  }
}
clearInterval(timer);
for (const r of runners) {
  await r.pool?.close();
  await r.session.flush();
  r.session.dispose();
}
rmSync(runsDir, { recursive: true, force: true }); // the runs' files and checkpoints: only their timings are kept

/** The median, leaving out NaN (a step where a stage ran on one worker only has no end gap). */
const median = (xs: number[]) => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
/** `key` of each of a runner's steps after the warm-up. */
const timedValues = (r: Runner, key: string) => r.steps.slice(warmup).map((s) => s[key]!);
/** The median of `key` over a runner's steps after the warm-up. */
const timedMedian = (r: Runner, key: string) => median(timedValues(r, key));
const THREAD_KEYS = ['main_cpu_s', 'workers_cpu_s', 'workers_wait_s', 'background_cpu_s'];
const keysOf = (r: Runner) => [
  ...['sample_s', 'cluster_s', 'train_s', 'total_s', 'serial_s', 'sample_tokens_per_s', 'train_tokens_per_s', 'cores_used'],
  ...(r.workers > 1 ? ['workers_idle_s'] : []),
  ...(r.workers > 1 && timeline ? ['sample_end_gap_s', 'train_end_gap_s'] : []),
  ...(r.threads.length === r.steps.length ? THREAD_KEYS : []),
];
/** Sums over the timed steps: the CPU of `r`'s work against `base`'s, and the share of r's cores it used. */
function timeBreakdown(base: Runner, r: Runner) {
  if (base.threads.length !== base.steps.length || r.threads.length !== r.steps.length || r.workers < 2) return {};
  const workCpu = (x: Runner) => sum(x.threads.slice(warmup).map((t) => (x.pool ? sum(t.worker_cpu_s) : t.main_cpu_s)));
  const wall = sum(timedValues(r, 'total_s'));
  const perStep = (key: string) => sum(timedValues(r, key)) / timedValues(r, key).length;
  return {
    work_cpu_ratio: workCpu(r) / workCpu(base),
    capacity_used: workCpu(r) / (r.workers * wall),
    /** Means per timed step, summed over the workers: runnable but waiting for a core; without a task. */
    workers_wait_s: perStep('workers_wait_s'),
    workers_idle_s: perStep('workers_idle_s'),
  };
}
/**
 * The full step's speed-up from the steps paired one by one (the same step number ran the same rollouts on both
 * runners, a few seconds apart): the median of the per-step ratios, and the ratio of the timed steps' total times
 * (what a run of those steps takes). The ratio of the two medians above can pair a slow step of one runner with a
 * fast step of the other when the steps' work or the machine's speed varies over the run; these two cannot.
 */
function pairedSpeedup(base: Runner, r: Runner) {
  const a = timedValues(base, 'total_s');
  const b = timedValues(r, 'total_s');
  return { total_paired_median: median(a.map((x, i) => x / b[i]!)), total_time_ratio: sum(a) / sum(b) };
}
const strip = (m: MetricsRow) => ({ ...m, seconds: 0, tokens_per_second: 0 });
const result = {
  backend,
  cpus: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
  model: config.model,
  config: {
    workers: workerCounts,
    sampler: config.sampler,
    trainer: { micro_batch_size: config.trainer.micro_batch_size, loss_type: config.trainer.loss_type, num_iterations: config.trainer.num_iterations, beta: config.trainer.beta },
    steps: timed,
    warmup,
  },
  runs: runners.map((r) => ({
    workers: r.workers,
    startup_s: r.startup_s,
    steps: r.steps,
    /** Per step (--timeline): every task each worker ran, in ms from the step's start. */
    ...(timeline && r.pool && { tasks: r.tasks }),
    /** Per step, CPU seconds by thread (Linux; empty elsewhere): each worker's, and its wait for a core. */
    threads: r.threads,
    median: Object.fromEntries(keysOf(r).map((k) => [k, timedMedian(r, k)])),
  })),
  /**
   * Median full-step time of the first worker count over each other one's, and the same from the steps paired
   * one by one (`total_paired_median`, `total_time_ratio`: see pairedSpeedup); with per-thread CPU times (Linux),
   * also where the time went over the timed steps: the CPU the workers spent on the same work as the first run's
   * threads (`work_cpu_ratio`), and the share of the n cores' time they spent computing (`capacity_used`). The
   * speed-up over a one-thread run that had its core to itself is about n x capacity_used / work_cpu_ratio.
   */
  speedup: runners.slice(1).map((r) => ({
    workers: `${runners[0]!.workers} -> ${r.workers}`,
    total: timedMedian(runners[0]!, 'total_s') / timedMedian(r, 'total_s'),
    sample: timedMedian(runners[0]!, 'sample_s') / timedMedian(r, 'sample_s'),
    train: timedMedian(runners[0]!, 'train_s') / timedMedian(r, 'train_s'),
    ...pairedSpeedup(runners[0]!, r),
    ...timeBreakdown(runners[0]!, r),
  })),
  /** Whether every worker count produced the same metrics (wall-clock columns aside) at every step. */
  identical: runners.every((r) => JSON.stringify(r.metrics.map(strip)) === JSON.stringify(runners[0]!.metrics.map(strip))),
  peak_rss_mb: Math.round(peakRss / 2 ** 20),
};
if (json) console.log(JSON.stringify(result, null, 2));
else {
  console.log(`backend ${backend}, ${config.sampler.questions_per_step} questions x ${config.sampler.num_generations} samples, ${timed} steps${warmup ? ` after ${warmup} warm-up` : ''}, ${result.cpus}`);
  for (const r of result.runs) {
    console.log(`workers ${r.workers} (startup ${r.startup_s.toFixed(1)}s):`);
    r.steps.forEach((s, i) => {
      console.log(`  step ${s.step}${s.step! <= warmup ? ' (warm-up)' : ''}: sample ${s.sample_s!.toFixed(2)}s (${Math.round(s.sample_tokens_per_s!)} tok/s), cluster ${s.cluster_s!.toFixed(3)}s, train ${s.train_s!.toFixed(2)}s (${Math.round(s.train_tokens_per_s!)} tok/s), total ${s.total_s!.toFixed(2)}s${r.workers > 1 ? ` (no worker busy ${s.serial_s!.toFixed(3)}s, workers without a task ${s.workers_idle_s!.toFixed(3)}s)` : ''}, ${s.cores_used!.toFixed(2)} cores, ${s.tensors} tensors`);
      const t = r.threads[i];
      const tasks = r.tasks?.[i];
      if (tasks) {
        const byThread = Array.from({ length: r.workers }, (_, w) => tasks.filter((x) => x.thread === w));
        console.log(`    tasks (ms from the step's start): ${byThread.map((ts, w) => `w${w} ${ts.map((x) => `${x.task} ${x.start_ms.toFixed(0)}-${x.end_ms.toFixed(0)}`).join(', ')}`).join('; ')}`);
        console.log(`    last tasks ended apart: sampling ${(1000 * s.sample_end_gap_s!).toFixed(0)} ms, training ${(1000 * s.train_end_gap_s!).toFixed(0)} ms`);
      }
      if (t) console.log(`    CPU by thread: main ${t.main_cpu_s.toFixed(2)}s${t.worker_cpu_s.length ? `, workers ${t.worker_cpu_s.map((c) => c.toFixed(2)).join(' + ')}s (waited for a core ${t.worker_wait_s.map((w) => w.toFixed(3)).join(' + ')}s)` : ''}, background ${t.background_cpu_s.toFixed(2)}s`);
    });
    const m = r.median;
    console.log(`  median: sample ${m.sample_s!.toFixed(2)}s (${Math.round(m.sample_tokens_per_s!)} tok/s), cluster ${m.cluster_s!.toFixed(3)}s, train ${m.train_s!.toFixed(2)}s (${Math.round(m.train_tokens_per_s!)} tok/s), total ${m.total_s!.toFixed(2)}s${r.workers > 1 ? ` (no worker busy ${m.serial_s!.toFixed(3)}s, workers without a task ${m.workers_idle_s!.toFixed(3)}s)` : ''}`);
    if (m.sample_end_gap_s !== undefined) console.log(`  median of how far apart the workers' last tasks ended: sampling ${(1000 * m.sample_end_gap_s).toFixed(0)} ms, training ${(1000 * m.train_end_gap_s!).toFixed(0)} ms`);
    if (m.background_cpu_s !== undefined) {
      console.log(`  median CPU by thread: main ${m.main_cpu_s!.toFixed(2)}s${r.workers > 1 ? `, workers ${m.workers_cpu_s!.toFixed(2)}s (waited for a core ${m.workers_wait_s!.toFixed(3)}s)` : ''}, background ${m.background_cpu_s!.toFixed(2)}s`);
    }
  }
  for (const s of result.speedup) {
    console.log(`speed-up ${s.workers} workers: full step ${s.total.toFixed(2)}x (sample ${s.sample.toFixed(2)}x, train ${s.train.toFixed(2)}x)`);
    console.log(`  steps paired: median of the per-step ratios ${s.total_paired_median.toFixed(2)}x; the timed steps' total time ${s.total_time_ratio.toFixed(2)}x`);
    if (s.capacity_used !== undefined) {
      console.log(
        `  the workers' CPU for the same work: ${s.work_cpu_ratio.toFixed(3)}x; they computed ${(100 * s.capacity_used).toFixed(1)}% of their cores' time ` +
          `(per step: waiting for a core ${s.workers_wait_s.toFixed(3)}s, without a task ${s.workers_idle_s.toFixed(3)}s, summed over the workers)`,
      );
    }
  }
  if (runners.length > 1) console.log(`identical metrics across worker counts: ${result.identical}`);
  console.log(`peak RSS ${result.peak_rss_mb} MB`);
}
