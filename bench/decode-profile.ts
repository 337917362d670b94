/**
 * Where sampling spends its time, by tfjs kernel: one `generate` call with the KV cache over real training prompts
 * (G = 8 samples per question, as the sampler sends them), every kernel called at the top level of the engine
 * timed, on wasm, after warm-up calls. With --rows 64 and --rows 128 it shows what a worker's half of a step's
 * sampling costs against the whole batch on one thread.
 *   npx tsx bench/decode-profile.ts [--json] [--rows N] [--tokens N] [--repeats N]
 * Default: 64 rows (8 questions x 8 samples), 26 new tokens each (EOS ignored: a typical rollout length), 5 repeats.
 * The token steps run through the tfjs engine here (setDirectDecode(false)): DirectDecoder calls the same kernels
 * without it, so the engine is the only place to time them one by one (bench/direct-decode.ts compares the two).
 */
import { loadConfig, selectBackend } from '@empo/core';
import { Policy, generate, rowSeeds, setDirectDecode } from '@empo/policy';
import { questionsForStep, readTrainQueries, renderPrompt } from '@empo/sampler';
import { profileKernels } from './kernel-profile.ts';

process.env.EMPO_QUIET = '1';
const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const json = args.includes('--json');
const [rows, tokens, repeats] = [flag('--rows', 64), flag('--tokens', 26), flag('--repeats', 5)];
for (const [name, v] of [['--rows', rows], ['--tokens', tokens], ['--repeats', repeats]] as const) {
  if (!Number.isInteger(v) || v < 1 || (name === '--rows' && v % 8 !== 0)) {
    throw new Error(`bench/decode-profile.ts: ${name} must be a positive integer${name === '--rows' ? ' divisible by 8 (samples per question)' : ''}`);
  }
}

const config = loadConfig({ overrides: [] });
await selectBackend('wasm', true);
setDirectDecode(false);
const policy = await Policy.load(config.model);
const sampler = config.sampler;
const G = 8;
const questions = questionsForStep(readTrainQueries(config), 1, rows / G, config.seed);
const prompts = questions.flatMap((q) => {
  const ids = policy.encodePrompt(renderPrompt(sampler.prompt_template, q.question), { chat: sampler.chat });
  return Array.from({ length: G }, () => ids);
});
const options = { maxNewTokens: tokens, temperature: sampler.temperature, topP: sampler.top_p, rowSeeds: rowSeeds(config.seed, rows), stopAtEos: false };
for (let i = 0; i < 3; i++) generate(policy, prompts, options);

const { msPerRun: total, kernels, msInKernels: inKernels } = profileKernels(() => generate(policy, prompts, options), repeats);
if (json) console.log(JSON.stringify({ rows, tokens, repeats, ms_per_generate: total, ms_per_token_step: total / tokens, ms_in_kernels: inKernels, kernels }, null, 2));
else {
  console.log(`generate ${rows} rows x ${tokens} new tokens: ${total.toFixed(0)} ms (${(total / tokens).toFixed(2)} ms per token step, ${((rows * tokens) / (total / 1000)).toFixed(0)} tokens/s), ${inKernels.toFixed(0)} ms in kernels`);
  for (const k of kernels.filter((k) => k.ms >= 0.5)) {
    console.log(`  ${k.kernel.padEnd(22)} ${k.ms.toFixed(1).padStart(7)} ms ${String(k.calls).padStart(6)} calls ${((1000 * k.ms) / k.calls).toFixed(1).padStart(7)} us/call`);
  }
}
