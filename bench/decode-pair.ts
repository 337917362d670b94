/**
 * How much two worker threads decoding at once slow each other down, for models of a few depths: per round, two
 * 64-row `generate` calls (8 questions x 8 samples of real training prompts, 26 new tokens, EOS ignored) run one
 * after the other on one worker, then both at once on two workers; the round's ratio is (both at once) / (one at
 * a time), timed inside the workers. Random weights with the bundled model's shapes and `--layers` layers (4 is
 * the bundled depth; 1 keeps all its weights, ~1 MB, in one core's L2 cache), one pool per depth, rounds
 * alternating between depths.
 *   npx tsx bench/decode-pair.ts [--json] [--layers 4,1] [--rounds N]
 * Reported per depth: the median time of one call alone, and the median and quartiles of the round ratios.
 */
import { loadConfig, selectBackend } from '@empo/core';
import { Policy, PolicyWorkers, rowSeeds } from '@empo/policy';
import { questionsForStep, readTrainQueries, renderPrompt } from '@empo/sampler';

process.env.EMPO_QUIET = '1';
const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const json = args.includes('--json');
const depths = (flag('--layers') ?? '4,1').split(',').map(Number);
const rounds = Number(flag('--rounds') ?? 30);
if (!depths.every((d) => Number.isInteger(d) && d >= 1)) throw new Error('bench/decode-pair.ts: --layers must be a comma-separated list of positive integers');
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('bench/decode-pair.ts: --rounds must be a positive integer');

const config = loadConfig({ overrides: [] });
const backend = await selectBackend(config.backend, true);
const bundled = await Policy.load(config.model);
const sampler = config.sampler;
const halves = [0, 1].map((k) => {
  const questions = questionsForStep(readTrainQueries(config), 1 + k, 8, config.seed);
  const prompts = questions.flatMap((q) => {
    const ids = bundled.encodePrompt(renderPrompt(sampler.prompt_template, q.question), { chat: sampler.chat });
    return Array.from({ length: 8 }, () => ids);
  });
  return { prompts, options: { maxNewTokens: 26, temperature: 1, rowSeeds: rowSeeds(k + 1, prompts.length), stopAtEos: false, padTo: 32 } };
});

const setups = [];
for (const layers of depths) {
  const policy = Policy.init({ ...bundled.config, num_hidden_layers: layers }, bundled.tokenizer, 1);
  const pool = await PolicyWorkers.start({ workers: 2, backend, model: policy, taskModules: [new URL('./decode-pair-tasks.ts', import.meta.url)] });
  await pool.syncWeights(policy.weights);
  setups.push({ layers, pool, alone: [] as number[], ratios: [] as number[] });
}
const WARM_UP = 3;
for (let round = 0; round < rounds + WARM_UP; round++) {
  for (const s of setups) {
    const run = (half: (typeof halves)[number]) => s.pool.run<number>('bench.timedGenerate', half);
    const alone = [await run(halves[0]!), await run(halves[1]!)];
    const both = await Promise.all(halves.map(run));
    if (round < WARM_UP) continue;
    s.alone.push((alone[0]! + alone[1]!) / 2);
    s.ratios.push((both[0]! + both[1]!) / (alone[0]! + alone[1]!));
  }
}
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!;
const result = setups.map((s) => ({
  layers: s.layers,
  alone_ms: quantile(s.alone, 0.5),
  ratio_median: quantile(s.ratios, 0.5),
  ratio_p25: quantile(s.ratios, 0.25),
  ratio_p75: quantile(s.ratios, 0.75),
}));
for (const s of setups) await s.pool.close();
if (json) console.log(JSON.stringify({ rounds, results: result }, null, 2));
else {
  for (const r of result) {
    console.log(`${r.layers} layer(s): one call alone ${r.alone_ms.toFixed(0)} ms; both at once / one at a time, per round: median ${r.ratio_median.toFixed(3)} (quartiles ${r.ratio_p25.toFixed(2)}-${r.ratio_p75.toFixed(2)})`);
  }
}
