/**
 * Where one micro-batch of the policy update spends its time, by tfjs kernel: every kernel called at the top
 * level of the engine (a kernel's nested calls count in its own time) is timed over the forward, backward and
 * loss of one micro-batch gradient on the bundled tiny model, on wasm, after warm-up runs.
 *   npx tsx bench/update-profile.ts [--json] [--sequences N] [--length T] [--repeats N] [--shapes]
 * Default: 32 sequences of 42 tokens (the default micro_batch_size and a typical rollout length), 5 repeats.
 * --shapes splits the matmul kernels by their inputs' shapes and gives each one's GFLOP/s.
 */
import * as tf from '@tensorflow/tfjs';
import { loadConfig, Rng, selectBackend } from '@empo/core';
import { Policy } from '@empo/policy';
import { disposeMicroBatch, microBatch, microBatchGradient } from '../packages/trainer/src/gradient.ts';
import { profileKernels } from './kernel-profile.ts';

process.env.EMPO_QUIET = '1';
const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const json = args.includes('--json');
const byShape = args.includes('--shapes');
const [sequences, length, repeats] = [flag('--sequences', 32), flag('--length', 42), flag('--repeats', 5)];
for (const [name, v] of [['--sequences', sequences], ['--length', length], ['--repeats', repeats]] as const) {
  if (!Number.isInteger(v) || v < 1 || (name === '--length' && v < 3)) throw new Error(`bench/update-profile.ts: ${name} must be a positive integer${name === '--length' ? ' >= 3' : ''}`);
}

const config = loadConfig({ overrides: [] });
await selectBackend('wasm', true);
const policy = await Policy.load(config.model);
const rng = new Rng(1);
const V = policy.config.vocab_size;
const promptLength = Math.floor(length / 3);
const examples = Array.from({ length: sequences }, () => ({
  ids: Array.from({ length }, () => 4 + Math.floor(rng.next() * (V - 4))), // the cost does not depend on the tokens
  promptLength,
  oldLogprobs: new Array<number>(length - promptLength).fill(-1),
  advantage: rng.next() - 0.5,
}));
const settings = { epsilonLow: 0.2, epsilonHigh: 0.2, beta: 0, lossType: 'grpo' as const, normalizer: sequences };
const model = { config: policy.config, padId: policy.padId, weights: policy.namedVariables() };
const gradient = () => {
  const b = microBatch(examples);
  const r = microBatchGradient(model, b, settings, true);
  tf.dispose([...r.grads.values()]);
  disposeMicroBatch(b);
};
for (let i = 0; i < 3; i++) gradient();

const { msPerRun: total, kernels, msInKernels: inKernels } = profileKernels(gradient, repeats, byShape);
if (json) console.log(JSON.stringify({ sequences, length, repeats, ms_per_micro_batch: total, ms_in_kernels: inKernels, kernels }, null, 2));
else {
  console.log(`one micro-batch of ${sequences} x ${length} tokens: ${total.toFixed(0)} ms (${((sequences * length) / (total / 1000)).toFixed(0)} tokens/s), ${inKernels.toFixed(0)} ms in kernels`);
  for (const k of kernels.filter((k) => k.ms >= 0.5)) {
    const speed = k.gflops === undefined ? '' : `  ${k.gflops.toFixed(1).padStart(5)} GFLOP/s`;
    console.log(`  ${k.kernel.padEnd(byShape ? 52 : 22)} ${k.ms.toFixed(1).padStart(7)} ms ${String(k.calls).padStart(6)} calls${speed}`);
  }
}
