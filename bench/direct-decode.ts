/**
 * `generate`'s token steps through the tfjs engine against DirectDecoder (packages/policy/src/decode.ts), on the
 * bundled tiny model over real training prompts (8 samples per question, as the sampler sends them), alternating
 * the two in the same minutes, with a check that both give the same tokens and log-probs, bit for bit.
 *   npx tsx bench/direct-decode.ts [--json] [--rows 1,8,64,128] [--tokens N] [--repeats N]
 * Default: 1, 8, 64 and 128 rows, 48 new tokens each (EOS ignored, so every call does the same steps), 7 repeats;
 * reports the median ms per call and per token step, and the ratio.
 */
import { loadConfig, selectBackend } from '@empo/core';
import { Policy, directDecodeSteps, generate, rowSeeds, setDirectDecode, type GenerateOptions } from '@empo/policy';
import { questionsForStep, readTrainQueries, renderPrompt } from '@empo/sampler';

process.env.EMPO_QUIET = '1';
const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const json = args.includes('--json');
const rowCounts = (flag('--rows') ?? '1,8,64,128').split(',').map(Number);
const tokens = Number(flag('--tokens') ?? 48);
const repeats = Number(flag('--repeats') ?? 7);
for (const [name, v] of [['--tokens', tokens], ['--repeats', repeats], ...rowCounts.map((r) => ['--rows', r] as const)] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`bench/direct-decode.ts: ${name} must be positive integers, got ${flag(name)}`);
}

const config = loadConfig({ overrides: [] });
await selectBackend('wasm', true);
const policy = await Policy.load(config.model);
const G = 8;
const queries = readTrainQueries(config);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const results = [];
for (const rows of rowCounts) {
  const questions = questionsForStep(queries, 1, Math.ceil(rows / G), config.seed);
  const prompts = questions
    .flatMap((q) => {
      const ids = policy.encodePrompt(renderPrompt(config.sampler.prompt_template, q.question), { chat: config.sampler.chat });
      return Array.from({ length: G }, () => ids);
    })
    .slice(0, rows);
  const opts: GenerateOptions = { maxNewTokens: tokens, temperature: config.sampler.temperature, topP: config.sampler.top_p, rowSeeds: rowSeeds(config.seed, rows), stopAtEos: false };
  const run = (direct: boolean) => {
    setDirectDecode(direct);
    const t = performance.now();
    const out = generate(policy, prompts, opts);
    return { ms: performance.now() - t, out };
  };
  const first = [run(false), run(true)]; // warm-up, and the bits check
  const same = JSON.stringify(first[0]!.out) === JSON.stringify(first[1]!.out);
  const steps0 = directDecodeSteps();
  const engine: number[] = [];
  const direct: number[] = [];
  for (let i = 0; i < repeats; i++) {
    engine.push(run(false).ms);
    direct.push(run(true).ms);
  }
  if (directDecodeSteps() - steps0 !== repeats * (tokens - 1)) throw new Error('bench/direct-decode.ts: DirectDecoder did not run every step');
  const [e, d] = [median(engine), median(direct)];
  results.push({ rows, tokens, engine_ms: e, direct_ms: d, engine_ms_per_step: e / tokens, direct_ms_per_step: d / tokens, speedup: e / d, identical: same });
}
setDirectDecode(true);
policy.dispose();

if (json) console.log(JSON.stringify({ model: config.model, repeats, results }, null, 2));
else {
  console.log(`generate on ${config.model}, ${tokens} new tokens per row, medians of ${repeats} (alternating):`);
  for (const r of results) {
    console.log(
      `  ${String(r.rows).padStart(4)} rows: tfjs engine ${r.engine_ms.toFixed(1)} ms (${r.engine_ms_per_step.toFixed(2)} ms/step), ` +
        `DirectDecoder ${r.direct_ms.toFixed(1)} ms (${r.direct_ms_per_step.toFixed(2)} ms/step): ${r.speedup.toFixed(2)}x, identical output: ${r.identical}`,
    );
  }
}
if (results.some((r) => !r.identical)) process.exitCode = 1;
