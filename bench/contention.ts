/**
 * What two worker threads cost each other on this machine: the pool's two task kinds (a 64-row `generate` of a
 * step's prompts, and the gradient of one 24 x 42-token micro-batch) timed on one worker while the other is
 * idle, then on both workers at once. `2 x alone / at once` is the speed-up two workers can reach on that task
 * (2.0 when the cores do not slow each other down); bench/ceiling.ts measures the same for whole steps in
 * separate processes. Also reported: each worker's start-up time and its live JS heap after a full collection
 * (every full collection marks all of it). A third task kind, `matmul`, is a loop of one wasm matmul kernel (compute
 * with almost no JavaScript). On Linux, also the CPU time each task took on its thread (bench/threads.ts), alone
 * and at once: their ratio says how much slower a core runs the same work while the other core is busy, whatever
 * other load the machine has (CPU time does not count time spent waiting for a core).
 *   node --expose-gc --import tsx bench/contention.ts [--json] [--rounds N]
 * Rounds alternate alone / at once so both see the same machine load; medians over rounds 3..N.
 */
import { loadConfig, Rng, selectBackend } from '@empo/core';
import { Policy, PolicyWorkers, rowSeeds } from '@empo/policy';
import { questionsForStep, readTrainQueries, renderPrompt } from '@empo/sampler';
import { trainerTaskModule } from '@empo/trainer';
import { splitThreadTimes, threadTimes } from './threads.ts';

process.env.EMPO_QUIET = '1';
const args = process.argv.slice(2);
const json = args.includes('--json');
const rounds = Number(args.includes('--rounds') ? args[args.indexOf('--rounds') + 1] : 15);
if (!Number.isInteger(rounds) || rounds < 3) throw new Error('bench/contention.ts: --rounds must be an integer >= 3');

const config = loadConfig({ overrides: [] });
await selectBackend('wasm', true);
const policy = await Policy.load(config.model);

// generate: the first 8 questions of step 1 x G = 8 rows, as the sampler asks for them
const questions = questionsForStep(readTrainQueries(config), 1, 8, config.seed);
const prompts = questions.flatMap((q) => {
  const ids = policy.encodePrompt(renderPrompt(config.sampler.prompt_template, q.question), { chat: config.sampler.chat });
  return Array.from({ length: config.sampler.num_generations }, () => ids);
});
const generateTask = {
  prompts,
  opts: { maxNewTokens: config.sampler.max_new_tokens, temperature: config.sampler.temperature, rowSeeds: rowSeeds(1, prompts.length) },
};

// gradient: random tokens (the cost does not depend on them), each worker writing into its own buffer
const rng = new Rng(1);
const V = policy.config.vocab_size;
const examples = Array.from({ length: 24 }, () => ({
  ids: Array.from({ length: 42 }, () => 4 + Math.floor(rng.next() * (V - 4))),
  promptLength: 14,
  oldLogprobs: new Array<number>(28).fill(-1),
  advantage: rng.next() - 0.5,
}));
const size = [...policy.weights.values()].reduce((n, v) => n + v.size, 0);
const gradientTask = (out: SharedArrayBuffer) => ({
  examples,
  settings: { epsilonLow: 0.2, epsilonHigh: 0.2, beta: 0, lossType: 'grpo' as const, normalizer: examples.length },
  withStats: true,
  out,
});
const outs = [new SharedArrayBuffer(size * 4), new SharedArrayBuffer(size * 4)];

const heapModule = new URL('./contention-heap.ts', import.meta.url);
const t0 = performance.now();
const pool = await PolicyWorkers.start({ workers: 2, backend: 'wasm', model: policy, taskModules: [trainerTaskModule, heapModule] });
const startup_s = (performance.now() - t0) / 1000;
await pool.syncWeights(policy.weights);

/** Wall ms of f, and the CPU ms each worker thread used meanwhile (null where /proc has no per-thread times). */
const time = async (f: () => Promise<unknown>) => {
  const t = performance.now();
  const before = threadTimes();
  await f();
  const wall = performance.now() - t;
  const split = splitThreadTimes(before, threadTimes(), pool.osThreadIds);
  return { wall, cpu: split ? split.worker_cpu_s.map((s) => s * 1000) : null, wait: split ? split.worker_wait_s.map((s) => s * 1000) : null };
};
const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)]!;
const kinds = {
  generate: (i: number) => pool.run('generate', generateTask),
  gradient: (i: number) => pool.run('trainer.gradient', gradientTask(outs[i]!)),
  matmul: (_i: number) => pool.run('matmul', 1000),
};
interface TaskResult {
  alone_ms: number;
  at_once_ms: number;
  speedup_two: number;
  /** CPU ms of the task's thread, alone and (the mean of both) at once; their ratio: how much slower a busy core runs it. */
  cpu_alone_ms: number | null;
  cpu_at_once_ms: number | null;
  cpu_at_once_over_alone: number | null;
  /** At once: the slower thread's CPU ms, and the ms each thread waited for a core (mean of both). */
  cpu_at_once_slower_ms: number | null;
  wait_at_once_ms: number | null;
}
const result: Record<string, TaskResult> = {};
for (const [kind, run] of Object.entries(kinds)) {
  const alone: { wall: number; cpu: number | null }[] = [];
  const both: { wall: number; cpu: number | null; slower: number | null; wait: number | null }[] = [];
  for (let r = 0; r < rounds; r++) {
    const a = await time(() => run(0));
    alone.push({ wall: a.wall, cpu: a.cpu ? a.cpu[0]! + a.cpu[1]! : null }); // the idle worker adds ~0
    const b = await time(() => Promise.all([run(0), run(1)]));
    both.push({
      wall: b.wall,
      cpu: b.cpu ? (b.cpu[0]! + b.cpu[1]!) / 2 : null,
      slower: b.cpu ? Math.max(...b.cpu) : null,
      wait: b.wait ? (b.wait[0]! + b.wait[1]!) / 2 : null,
    });
  }
  const a = median(alone.slice(2).map((x) => x.wall));
  const b = median(both.slice(2).map((x) => x.wall));
  const cpuA = alone[0]!.cpu === null ? null : median(alone.slice(2).map((x) => x.cpu!));
  const cpuB = both[0]!.cpu === null ? null : median(both.slice(2).map((x) => x.cpu!));
  result[kind] = {
    alone_ms: Math.round(a),
    at_once_ms: Math.round(b),
    speedup_two: Number(((2 * a) / b).toFixed(2)),
    cpu_alone_ms: cpuA === null ? null : Math.round(cpuA),
    cpu_at_once_ms: cpuB === null ? null : Math.round(cpuB),
    cpu_at_once_over_alone: cpuA === null || cpuB === null ? null : Number((cpuB / cpuA).toFixed(3)),
    cpu_at_once_slower_ms: cpuB === null ? null : Math.round(median(both.slice(2).map((x) => x.slower!))),
    wait_at_once_ms: cpuB === null ? null : Math.round(median(both.slice(2).map((x) => x.wait!))),
  };
}
const heaps = await Promise.all([pool.run<number | null>('heap', null), pool.run<number | null>('heap', null)]);
await pool.close();

const report = { workers: 2, startup_s: Number(startup_s.toFixed(2)), worker_heap_mb: heaps.map((h) => (h === null ? null : Number(h.toFixed(1)))), tasks: result };
if (json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(`2 workers started in ${report.startup_s}s; live heap per worker: ${report.worker_heap_mb.map((h) => (h === null ? '? (run with --expose-gc)' : `${h} MB`)).join(', ')}`);
  for (const [kind, r] of Object.entries(result)) {
    console.log(`${kind}: one task alone ${r.alone_ms} ms, one on each worker at once ${r.at_once_ms} ms: two workers give ${r.speedup_two}x`);
    if (r.cpu_alone_ms !== null) {
      console.log(`  CPU time of a task: alone ${r.cpu_alone_ms} ms, at once ${r.cpu_at_once_ms} ms (x${r.cpu_at_once_over_alone}: the same work costs a core that much more when both cores are busy)`);
      console.log(`  at once: the slower thread's CPU ${r.cpu_at_once_slower_ms} ms; each thread waited ${r.wait_at_once_ms} ms for a core`);
    }
  }
}
