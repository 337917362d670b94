/**
 * Sampling split across worker threads with and without row handover (PolicyWorkers.generate, handoff 'auto'
 * against 'off'; packages/policy/src/workers/split-generate.ts), alternating in the same minutes, on the bundled
 * tiny model over real training prompts (16 questions x 8 samples, the sampler's settings, EOS on, so the parts
 * end at different times as in training), plus one thread (generate) for the speed-ups. Each round uses new
 * seeds, the same for every mode; checks that every mode gives the same tokens and log-probs, bit for bit.
 *   npx tsx bench/handoff.ts [--json] [--workers N] [--questions N] [--rounds N]
 * Default: 2 workers, 16 questions, 15 rounds after 3 warm-up rounds; reports medians (ms per call), the
 * per-round ratios' medians, how far apart the workers' last tasks ended, and the handovers per call.
 */
import { loadConfig, selectBackend } from '@empo/core';
import { Policy, PolicyWorkers, generate, rowSeeds, type GenerateOptions, type HandoffMode } from '@empo/policy';
import { questionsForStep, readTrainQueries, renderPrompt } from '@empo/sampler';

process.env.EMPO_QUIET = '1';
const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const json = args.includes('--json');
const [workerCount, questionCount, rounds] = [flag('--workers', 2), flag('--questions', 16), flag('--rounds', 15)];
for (const [name, v] of [['--workers', workerCount], ['--questions', questionCount], ['--rounds', rounds]] as const) {
  if (!Number.isInteger(v) || v < 1 || (name === '--workers' && v < 2)) throw new Error(`bench/handoff.ts: ${name} must be an integer >= ${name === '--workers' ? 2 : 1}, got ${v}`);
}

const config = loadConfig({ overrides: [] });
await selectBackend('wasm', true);
const policy = await Policy.load(config.model);
const workers = await PolicyWorkers.start({ workers: workerCount, backend: 'wasm', model: policy });
const G = config.sampler.num_generations;
const queries = readTrainQueries(config);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

type Mode = 'one thread' | HandoffMode;
const modes: Mode[] = ['one thread', 'off', 'auto'];
const ms: Record<Mode, number[]> = { 'one thread': [], off: [], auto: [], always: [] };
const endGaps: Record<Mode, number[]> = { 'one thread': [], off: [], auto: [], always: [] };
const resumes: Record<Mode, number[]> = { 'one thread': [], off: [], auto: [], always: [] };
const ratios: { off: number[]; auto: number[]; autoOverOff: number[] } = { off: [], auto: [], autoOverOff: [] };
let identical = true;
let tokens = 0;
workers.recordTasks();
for (let round = 0; round < rounds + 3; round++) {
  const questions = questionsForStep(queries, round + 1, questionCount, config.seed);
  const prompts = questions.flatMap((q) => {
    const ids = policy.encodePrompt(renderPrompt(config.sampler.prompt_template, q.question), { chat: config.sampler.chat });
    return Array.from({ length: G }, () => ids);
  });
  const opts: GenerateOptions = {
    maxNewTokens: config.sampler.max_new_tokens,
    temperature: config.sampler.temperature,
    topP: config.sampler.top_p,
    rowSeeds: rowSeeds(config.seed + round, prompts.length),
  };
  const outs: string[] = [];
  const times = {} as Record<Mode, number>;
  // The order of the modes turns each round, so none always runs first (or right after one thread).
  for (const mode of modes.map((_, i) => modes[(i + round) % modes.length]!)) {
    workers.takeTaskLog();
    const t = performance.now();
    const out = mode === 'one thread' ? generate(policy, prompts, opts) : await workers.generate(policy, prompts, opts, mode);
    times[mode] = performance.now() - t;
    outs.push(JSON.stringify(out));
    if (round < 3) continue;
    ms[mode].push(times[mode]);
    if (mode === 'one thread') tokens += out.tokens.reduce((n, x) => n + x.length, 0);
    else {
      const log = workers.takeTaskLog().filter((r) => r.task.startsWith('generate'));
      const last = new Map<number, number>();
      for (const r of log) last.set(r.thread, Math.max(last.get(r.thread) ?? 0, r.end));
      endGaps[mode].push(last.size === workerCount ? Math.max(...last.values()) - Math.min(...last.values()) : Number.NaN);
      resumes[mode].push(log.filter((r) => r.task === 'generate.resume').length);
    }
  }
  if (outs.some((o) => o !== outs[0])) identical = false;
  if (round >= 3) {
    ratios.off.push(times['one thread'] / times.off);
    ratios.auto.push(times['one thread'] / times.auto);
    ratios.autoOverOff.push(times.off / times.auto);
  }
}
await workers.close();

const result = {
  workers: workerCount,
  rows: questionCount * G,
  max_new_tokens: config.sampler.max_new_tokens,
  rounds,
  tokens_per_call: tokens / rounds,
  ms: { one_thread: median(ms['one thread']), off: median(ms.off), auto: median(ms.auto) },
  speedup: { off: median(ratios.off), auto: median(ratios.auto) },
  auto_over_off: median(ratios.autoOverOff),
  last_tasks_apart_ms: { off: median(endGaps.off), auto: median(endGaps.auto) },
  resume_tasks_per_call: { auto: median(resumes.auto) },
  identical,
};
if (json) console.log(JSON.stringify(result, null, 2));
else {
  console.log(`${result.rows} rows (${questionCount} questions x ${G}), up to ${result.max_new_tokens} new tokens, ${result.tokens_per_call.toFixed(0)} tokens per call; medians of ${rounds} rounds`);
  console.log(`  one thread        ${result.ms.one_thread.toFixed(1)} ms`);
  console.log(`  ${workerCount} workers, off   ${result.ms.off.toFixed(1)} ms  (${result.speedup.off.toFixed(2)}x; last tasks ended ${result.last_tasks_apart_ms.off.toFixed(0)} ms apart)`);
  console.log(`  ${workerCount} workers, auto  ${result.ms.auto.toFixed(1)} ms  (${result.speedup.auto.toFixed(2)}x; last tasks ended ${result.last_tasks_apart_ms.auto.toFixed(0)} ms apart; ${result.resume_tasks_per_call.auto} resume tasks per call)`);
  console.log(`  auto against off: ${result.auto_over_off.toFixed(3)}x (median of the per-round ratios); same bits in every mode: ${identical}`);
}
