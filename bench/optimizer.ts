/**
 * The AdamW step on the bundled tiny model's parameters (1.06M, the trainer's defaults: betas 0.9 / 0.999,
 * eps 1e-8), on wasm: the fused kernel (one pass per parameter, kernels/optimizer.ts) against the fourteen tfjs
 * ops per parameter it replaced (the same optimizer with the `fused` kernel group off), alternating, and the
 * gradient-norm computation (globalNorm) that precedes it in every update.
 *   npx tsx bench/optimizer.ts [--json] [--repeats N]
 * Reported: medians over the repeats, in milliseconds.
 */
import * as tf from '@tensorflow/tfjs';
import { loadConfig, selectBackend } from '@empo/core';
import { Policy, setWasmKernels } from '@empo/policy';
import { AdamW, globalNorm } from '@empo/trainer';

process.env.EMPO_QUIET = '1';
const args = process.argv.slice(2);
const json = args.includes('--json');
const repeats = Number(args.includes('--repeats') ? args[args.indexOf('--repeats') + 1] : 30);
if (!Number.isInteger(repeats) || repeats < 1) throw new Error('bench/optimizer.ts: --repeats must be a positive integer');

const config = loadConfig({ overrides: [] });
await selectBackend('wasm', true);
const policy = await Policy.load(config.model);
const params = policy.namedVariables();
const t = config.trainer;
const optimizer = new AdamW(params, { learningRate: t.learning_rate, beta1: t.adam_beta1, beta2: t.adam_beta2, epsilon: t.adam_epsilon, weightDecay: t.weight_decay });
const grads = new Map([...params].map(([name, p]) => [name, tf.randomNormal(p.shape, 0, 1e-3, 'float32', 1)]));

const times = { fused_ms: [] as number[], tensor_ops_ms: [] as number[], grad_norm_ms: [] as number[] };
const time = (f: () => void) => {
  const start = performance.now();
  f();
  return performance.now() - start;
};
for (let r = 0; r < repeats + 3; r++) {
  const warm = r >= 3;
  setWasmKernels(true);
  const fused = time(() => optimizer.apply(grads, 0.5));
  setWasmKernels(['matmul', 'tn', 'copy', 'fma']); // all but `fused`
  const plain = time(() => optimizer.apply(grads, 0.5));
  setWasmKernels(true);
  const norm = time(() => globalNorm(grads.values()));
  if (warm) {
    times.fused_ms.push(fused);
    times.tensor_ops_ms.push(plain);
    times.grad_norm_ms.push(norm);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const report = {
  parameters: [...params.values()].reduce((n, p) => n + p.size, 0),
  tensors: params.size,
  repeats,
  fused_ms: Number(median(times.fused_ms).toFixed(2)),
  tensor_ops_ms: Number(median(times.tensor_ops_ms).toFixed(2)),
  grad_norm_ms: Number(median(times.grad_norm_ms).toFixed(2)),
};
if (json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(`AdamW step, ${report.parameters} parameters in ${report.tensors} tensors (wasm, medians of ${repeats}):`);
  console.log(`  fused kernel ${report.fused_ms} ms, tfjs ops ${report.tensor_ops_ms} ms; gradient norm ${report.grad_norm_ms} ms`);
}
