import * as tf from '@tensorflow/tfjs';
import { CharTokenizer, Policy, tinyConfig, useBackend } from '../packages/policy/src/index.ts';
await useBackend('wasm');
const tok = CharTokenizer.fromChars('abcdef');
const p = Policy.init(tinyConfig({ vocabSize: tok.vocabSize, hiddenSize: 16, numLayers: 1, numHeads: 2 }), tok, 1);
const prompts = [p.encodePrompt('abc'), p.encodePrompt('de')];
for (const [name, f] of [
  ['gen', () => p.generate(prompts, { maxNewTokens: 4, temperature: 0 })],
  ['gen1', () => p.generate(prompts, { maxNewTokens: 1, temperature: 0 })],
  ['clp', () => p.completionLogprobs(prompts, [[1, 2], [3]])],
  ['slp', () => tf.tidy(() => p.sequenceLogprobs(prompts))],
] as const) {
  const before = tf.memory().numTensors;
  f();
  console.log(name, tf.memory().numTensors - before);
}
