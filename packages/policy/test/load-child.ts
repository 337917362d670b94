/**
 * Child process of memory.test.ts (run with `node --import tsx test/load-child.ts DIR [BACKEND] [--score]`):
 * loads the model folder DIR and prints one JSON line with the peak resident memory of the process, so the
 * measurement covers only the load (and, with --score, one short teacher-forced log-prob pass).
 */
import * as tf from '@tensorflow/tfjs';
import { memoryReport, peakMemoryMB, Policy, useBackend, type BackendName } from '../src/index.ts';

const [dir, backend = 'wasm', ...flags] = process.argv.slice(2);
if (!dir) throw new Error('usage: load-child.ts DIR [wasm|cpu] [--score]');
await useBackend(backend as BackendName);
const baseMB = peakMemoryMB();
const t0 = performance.now();
const policy = await Policy.load(dir);
const loadSeconds = (performance.now() - t0) / 1000;
const afterLoad = memoryReport(tf);
const out: Record<string, unknown> = {
  backend: tf.getBackend(),
  parameters: policy.numParameters(),
  loadSeconds,
  baseMB,
  peakAfterLoadMB: afterLoad.peakRssMB,
  rssAfterLoadMB: afterLoad.rssMB,
  tensorMB: afterLoad.tensorMB,
};
if (flags.includes('--score')) {
  const t1 = performance.now();
  const prompt = policy.encodePrompt('What is 12+30?');
  const lp = policy.completionLogprobs([prompt], [policy.tokenizer.encode(' 42')]);
  out.scoreSeconds = (performance.now() - t1) / 1000;
  out.logprobs = lp[0];
  out.peakAfterScoreMB = peakMemoryMB();
}
process.stdout.write(JSON.stringify(out) + '\n');
