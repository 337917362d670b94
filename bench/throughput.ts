/**
 * Training and sampling throughput of the tiny default model on exactly the shapes of bench/torch_ref.py (the
 * PyTorch reference), through the pipeline's own code paths:
 *   train:  one policy update (trainer policyUpdate: forward, backward, AdamW) on 32 sequences x 64 tokens
 *           (17 prompt + 47 completion tokens; tokens/s counts all 32 x 64);
 *   sample: 16 prompts x 8 samples (128 rows) of 17 tokens, 48 new tokens each with the KV cache, temperature 1,
 *           EOS ignored (tokens/s counts new tokens).
 * Random weights (tinyConfig: hidden 128, 4 layers, 4 heads, MLP 512, vocabulary 30). Median of --repeats runs
 * after a warm-up. --workers N uses N worker threads (PolicyWorkers) for both.
 *   npx tsx bench/throughput.ts [--workers N] [--repeats N] [--json]
 */
import * as tf from '@tensorflow/tfjs';
import { parseConfig } from '@empo/core';
import * as policyPkg from '@empo/policy';
import * as trainerPkg from '@empo/trainer';
import { CharTokenizer, Policy, tinyConfig, useBackend } from '@empo/policy';
import { AdamW, policyUpdate } from '@empo/trainer';

const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const json = args.includes('--json');
const repeats = Number(flag('--repeats') ?? 5);
const workerCount = Number(flag('--workers') ?? 1);

await useBackend('wasm');
const tok = CharTokenizer.fromChars('0123456789 +-*/=().,:?abcdef\n'.slice(0, 26)); // 26 chars + 4 specials = 30
const config = tinyConfig({ vocabSize: 30, bosId: tok.bosId, eosId: tok.eosId, padId: tok.padId });
const policy = Policy.init(config, tok, 1);

// Optional parts that older versions of the code do not have (the benchmark also runs on them, for before/after).
const PolicyWorkers = (policyPkg as Record<string, unknown>).PolicyWorkers as
  | { start(o: object): Promise<{ generate: typeof policy.generate extends (...a: infer A) => infer R ? (m: Policy, ...a: A) => Promise<R> : never; close(): Promise<void> }> }
  | undefined;
const policyUpdateParallel = (trainerPkg as Record<string, unknown>).policyUpdateParallel as
  | ((...a: [...Parameters<typeof policyUpdate>]) => Promise<ReturnType<typeof policyUpdate>>)
  | undefined;
const workers = workerCount > 1 && PolicyWorkers
  ? await PolicyWorkers.start({ workers: workerCount, backend: 'wasm', model: policy, taskModules: [(trainerPkg as Record<string, unknown>).trainerTaskModule] })
  : null;

const rand = (seed: number) => () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const r = rand(7);
const B = 32;
const T = 64;
const P = 17;
const examples = Array.from({ length: B }, () => ({
  ids: [tok.bosId!, ...Array.from({ length: T - 1 }, () => 4 + Math.floor(r() * 26))],
  promptLength: P,
  oldLogprobs: Array.from({ length: T - P }, () => -3.4),
  advantage: r() - 0.5,
}));
const trainerConfig = parseConfig({ trainer: { micro_batch_size: 32 } }).trainer;
const optimizer = new AdamW(policy.namedVariables(), { learningRate: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });

async function train(): Promise<void> {
  const opts = { maxCompletionLength: T - P };
  if (workers && policyUpdateParallel) await policyUpdateParallel(policy, optimizer, examples, trainerConfig, { ...opts, workers } as never);
  else policyUpdate(policy, optimizer, examples, trainerConfig, opts);
}

const prompts = Array.from({ length: 16 }, (_, q) => [tok.bosId!, ...Array.from({ length: P - 1 }, (_, t) => 4 + ((q * 7 + t * 3) % 26))]).flatMap((p) =>
  Array.from({ length: 8 }, () => p),
);
const NEW = 48;
async function sample(): Promise<void> {
  const opts = { maxNewTokens: NEW, temperature: 1, topP: 1, seed: 3, stopAtEos: false };
  if (workers) await workers.generate(policy, prompts, opts);
  else policy.generate(prompts, opts);
}

const med = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * Median wall-clock seconds, and median CPU seconds of the whole process (every thread): on a shared machine the
 * CPU time of a one-thread run is much steadier than its wall time, so it is the better figure for comparing
 * kernels; wall time is what counts with several workers.
 */
async function median(f: () => Promise<void>): Promise<{ wall: number; cpu: number }> {
  await f();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await f();
    wall.push((performance.now() - t0) / 1000);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
  }
  return { wall: med(wall), cpu: med(cpu) };
}

const countBefore = tf.memory().numTensors;
const trainS = await median(train);
const sampleS = await median(sample);
// generate keeps the last model's prepared (transposed) weights for its next call: a cache of one model, not a leak
const releasePrepared = (policyPkg as Record<string, unknown>).releasePreparedWeights as ((w: ReadonlyMap<string, tf.Tensor>) => void) | undefined;
releasePrepared?.(policy.weights);
const leaked = tf.memory().numTensors - countBefore;
await workers?.close();
const out = {
  backend: tf.getBackend(),
  workers: workers ? workerCount : 1,
  train: { batch: B, tokens: B * T, seconds: trainS.wall, tokens_per_s: (B * T) / trainS.wall, cpu_seconds: trainS.cpu },
  sample: {
    rows: prompts.length, prompt_tokens: P, new_tokens: NEW, seconds: sampleS.wall, tokens_per_s: (prompts.length * NEW) / sampleS.wall, cpu_seconds: sampleS.cpu,
  },
  tensors_leaked: leaked,
};
if (json) console.log(JSON.stringify(out));
else {
  console.log(`tfjs ${out.backend}, ${out.workers} worker(s)`);
  console.log(`train  (32 x 64 tokens, fwd + bwd + AdamW): ${trainS.wall.toFixed(3)} s (cpu ${trainS.cpu.toFixed(3)} s), ${Math.round(out.train.tokens_per_s)} tokens/s`);
  console.log(`sample (16 x 8 rows, 48 new tokens, KV cache): ${sampleS.wall.toFixed(3)} s (cpu ${sampleS.cpu.toFixed(3)} s), ${Math.round(out.sample.tokens_per_s)} tokens/s`);
  console.log(`tensors leaked: ${leaked}`);
}
