/**
 * The parent's share of a parallel update: summing the micro-batch gradients that the workers wrote into shared
 * buffers, in micro-batch order, into one tensor per weight. Times `sumGradients` (tf.add on the backend, the
 * current code) against a float32 JS loop over the flat arrays followed by one tensor per weight (the code before
 * it), alternating, on the bundled tiny model's weights with random gradients; checks that both give the same bits.
 *   npx tsx bench/gradient-sum.ts [--json] [--micro-batches N] [--repeats N]
 * Default: 4 micro-batches (the default step: 128 sequences, micro_batch_size 32), 30 repeats; medians.
 */
import * as tf from '@tensorflow/tfjs';
import { loadConfig, selectBackend } from '@empo/core';
import { Policy } from '@empo/policy';
import { sumGradients } from '../packages/trainer/src/gradient-sum.ts';
import type { GradientResult } from '../packages/trainer/src/worker-tasks.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const json = args.includes('--json');
const [parts, repeats] = [flag('--micro-batches', 4), flag('--repeats', 30)];
for (const [name, v] of [['--micro-batches', parts], ['--repeats', repeats]] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`bench/gradient-sum.ts: ${name} must be a positive integer`);
}

await selectBackend('wasm', true);
const policy = await Policy.load(loadConfig({ overrides: [] }).model);
const names = [...policy.weights.keys()];
const size = [...policy.weights.values()].reduce((n, v) => n + v.size, 0);
const results: GradientResult[] = Array.from({ length: parts }, () => {
  const grads = new Float32Array(new SharedArrayBuffer(size * 4));
  for (let i = 0; i < size; i++) grads[i] = (Math.random() - 0.5) * 1e-3;
  return { loss: 0, clipped: 0, ratioSum: 0, kl: 0, grads, names };
});

function addInto(total: Float32Array, g: Float32Array): void {
  for (let k = 0; k < total.length; k++) total[k] += g[k]!;
}
/** The code before: a float32 JS loop over the flat gradients, then a tensor per weight. */
function loopSum(): Map<string, tf.Tensor> {
  const total = results[0]!.grads.slice();
  for (const r of results.slice(1)) addInto(total, r.grads);
  const grads = new Map<string, tf.Tensor>();
  let offset = 0;
  for (const [name, v] of policy.weights) {
    grads.set(name, tf.tensor(total.subarray(offset, offset + v.size), v.shape, 'float32'));
    offset += v.size;
  }
  return grads;
}

const times = { loop: [] as number[], backend: [] as number[] };
let identical = true;
for (let i = 0; i < repeats + 3; i++) {
  for (const [kind, sum] of [['loop', loopSum], ['backend', () => sumGradients(policy, results)]] as const) {
    const t = performance.now();
    const grads = sum();
    const ms = performance.now() - t;
    if (i >= 3) times[kind].push(ms);
    if (i === 0) {
      const reference = loopSum();
      for (const name of names) {
        const [a, b] = [grads.get(name)!.dataSync(), reference.get(name)!.dataSync()];
        for (let k = 0; k < a.length; k++) if (!Object.is(a[k], b[k])) identical = false;
      }
      tf.dispose([...reference.values()]);
    }
    tf.dispose([...grads.values()]);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const result = { micro_batches: parts, values: size, repeats, loop_ms: median(times.loop), backend_ms: median(times.backend), identical };
if (json) console.log(JSON.stringify(result, null, 2));
else {
  console.log(`${parts} micro-batch gradients of ${size} values: JS loop ${result.loop_ms.toFixed(1)} ms, tf.add on the backend ${result.backend_ms.toFixed(1)} ms (medians of ${repeats}); same bits: ${identical}`);
}
