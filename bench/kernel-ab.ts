/**
 * One kernel group on against off, for sampling: `generate` calls over real training prompts (8 samples per
 * question, EOS ignored), alternating with all kernel groups on and with the groups of --off turned off, in one
 * process, so each pair of calls sees the same machine load. Reported: each side's median and fastest call, and the
 * median and quartiles of the per-pair ratio (on / off), which is what to read on a noisy machine.
 *   npx tsx bench/kernel-ab.ts --off elementwise [--rows 8] [--tokens 26] [--pairs 60] [--json]
 */
import { loadConfig, selectBackend } from '@empo/core';
import { Policy, generate, rowSeeds, setWasmKernels, type KernelGroup } from '@empo/policy';
import { questionsForStep, readTrainQueries, renderPrompt } from '@empo/sampler';
import { parseKernelGroups } from '../packages/policy/src/kernels/runtime.ts';

process.env.EMPO_QUIET = '1';
const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const json = args.includes('--json');
const off = parseKernelGroups(flag('--off') ?? 'elementwise');
const [rows, tokens, pairs] = (['--rows', '--tokens', '--pairs'] as const).map((name, i) => {
  const v = Number(flag(name) ?? [8, 26, 60][i]);
  if (!Number.isInteger(v) || v < 1 || (name === '--rows' && v % 8 !== 0)) throw new Error(`bench/kernel-ab.ts: ${name} must be a positive integer${name === '--rows' ? ' divisible by 8' : ''}`);
  return v;
}) as [number, number, number];
const allOn = parseKernelGroups(undefined);
const without = [...allOn].filter((g) => !off.has(g));

const config = loadConfig({ overrides: [] });
await selectBackend('wasm', true);
const policy = await Policy.load(config.model);
const questions = questionsForStep(readTrainQueries(config), 1, rows / 8, config.seed);
const prompts = questions.flatMap((q) => {
  const ids = policy.encodePrompt(renderPrompt(config.sampler.prompt_template, q.question), { chat: config.sampler.chat });
  return Array.from({ length: 8 }, () => ids);
});
const options = { maxNewTokens: tokens, temperature: config.sampler.temperature, topP: config.sampler.top_p, rowSeeds: rowSeeds(config.seed, rows), stopAtEos: false };
const timed = (groups: Iterable<KernelGroup>) => {
  setWasmKernels([...groups]);
  const t = performance.now();
  generate(policy, prompts, options);
  return performance.now() - t;
};
for (let i = 0; i < 10; i++) (timed(allOn), timed(without)); // warm-up: both paths compiled
const on: number[] = [];
const offTimes: number[] = [];
const ratios: number[] = [];
for (let i = 0; i < pairs; i++) {
  const onFirst = i % 2 === 0; // alternate which side runs first
  const first = timed(onFirst ? allOn : without);
  const second = timed(onFirst ? without : allOn);
  const [a, b] = onFirst ? [first, second] : [second, first];
  on.push(a);
  offTimes.push(b);
  ratios.push(a / b);
}
setWasmKernels(true);
const q = (x: number[], p: number) => [...x].sort((a, b) => a - b)[Math.floor(p * (x.length - 1))]!;
const result = {
  off: [...off], rows, tokens, pairs,
  on_ms: { median: q(on, 0.5), min: q(on, 0) },
  off_ms: { median: q(offTimes, 0.5), min: q(offTimes, 0) },
  ratio_on_over_off: { median: q(ratios, 0.5), p25: q(ratios, 0.25), p75: q(ratios, 0.75) },
};
if (json) console.log(JSON.stringify(result, null, 2));
else {
  console.log(`generate ${rows} rows x ${tokens} tokens, ${pairs} pairs: all kernels ${result.on_ms.median.toFixed(1)} ms (fastest ${result.on_ms.min.toFixed(1)}), without ${[...off].join(', ')} ${result.off_ms.median.toFixed(1)} ms (fastest ${result.off_ms.min.toFixed(1)})`);
  console.log(`  per pair, with / without: median ${result.ratio_on_over_off.median.toFixed(3)} (quartiles ${result.ratio_on_over_off.p25.toFixed(3)}-${result.ratio_on_over_off.p75.toFixed(3)})`);
}
