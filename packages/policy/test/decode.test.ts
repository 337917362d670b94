/**
 * DirectDecoder (src/decode.ts): generate's token steps without the tfjs engine give the bits of the tfjs forward,
 * apply only where they can, and free everything. Backend: wasm.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { directDecodeSteps, setDirectDecode, setWasmKernels, type GenerateOptions, type Policy } from '../src/index.ts';
import { sharpPolicy, withBackend } from './helpers.ts';

beforeAll(() => withBackend('wasm'));
afterEach(() => {
  setDirectDecode(true);
  setWasmKernels(true);
});

const TEXTS = ['what is 12+30?', '1+1=', 'abc', 'x=7, y=8, x*y=', 'q'];

/** generate through the tfjs forward and through DirectDecoder; also how many direct steps ran. */
function bothWays(p: Policy, prompts: number[][], opts: GenerateOptions) {
  setDirectDecode(false);
  const engine = p.generate(prompts, opts);
  setDirectDecode(true);
  const before = directDecodeSteps();
  const direct = p.generate(prompts, opts);
  return { engine, direct, directSteps: directDecodeSteps() - before };
}

describe('DirectDecoder', () => {
  const variants: [string, Parameters<typeof sharpPolicy>[0]][] = [
    ['GQA (4 heads, 2 kv heads) with q/k/v biases', { numHeads: 4, numKvHeads: 2, attentionBias: true }],
    ['GQA without biases, untied lm_head', { numHeads: 4, numKvHeads: 2, attentionBias: false, tieWordEmbeddings: false }],
    ['multi-head (kv heads = heads)', { numHeads: 2, numKvHeads: 2 }],
    ['multi-query (1 kv head), 3 layers, head dim 16', { numHeads: 2, numKvHeads: 1, numLayers: 3, hiddenSize: 32 }],
  ];
  for (const [name, opts] of variants) {
    test(`${name}: the same tokens and log-probs, bit for bit, through EOS row drops and cache merges`, () => {
      const p = sharpPolicy({ seed: 41, ...opts });
      // three samples of each prompt (prefilled once, copied), prompts of different lengths (left padding)
      const prompts = TEXTS.flatMap((s) => [0, 1, 2].map(() => p.tokenizer.encode(s)));
      const { engine, direct, directSteps } = bothWays(p, prompts, { maxNewTokens: 40, temperature: 1, seed: 5 });
      expect(direct.tokens).toEqual(engine.tokens);
      expect(direct.logprobs).toEqual(engine.logprobs); // exact: toEqual compares the numbers with Object.is
      expect(direct.finished).toEqual(engine.finished);
      expect(directSteps).toBeGreaterThan(16); // past a merge of the recent segment into the prefix
      // some rows stopped early and were dropped while others went on
      const lengths = new Set(engine.tokens.map((t) => t.length));
      expect(engine.finished.some((f) => f)).toBe(true);
      expect(lengths.size).toBeGreaterThan(2);
      p.dispose();
    });
  }

  test('one row, greedy, and top-p sampling: the same bits', () => {
    const p = sharpPolicy({ seed: 42 });
    const one = [p.tokenizer.encode('x=7, y=8, x*y=')];
    for (const opts of [{ maxNewTokens: 30, temperature: 0, stopAtEos: false }, { maxNewTokens: 30, temperature: 0.7, topP: 0.8, seed: 3 }]) {
      const { engine, direct, directSteps } = bothWays(p, one, opts);
      expect(direct).toEqual(engine);
      expect(directSteps).toBeGreaterThan(0);
    }
    p.dispose();
  });

  test('is used only with all kernel groups on, on wasm, for models decoded through transposed copies', async () => {
    const p = sharpPolicy({ seed: 43 });
    const prompts = [p.tokenizer.encode('1+1=')];
    const opts = { maxNewTokens: 8, temperature: 0, stopAtEos: false };
    const stepsOf = (f: () => void) => {
      const before = directDecodeSteps();
      f();
      return directDecodeSteps() - before;
    };
    expect(stepsOf(() => p.generate(prompts, opts))).toBe(7); // the first token comes from the prefill
    setWasmKernels(['matmul', 'copy', 'fused']); // elementwise off
    expect(stepsOf(() => p.generate(prompts, opts))).toBe(0);
    setWasmKernels(true);
    setDirectDecode(false);
    expect(stepsOf(() => p.generate(prompts, opts))).toBe(0);
    setDirectDecode(true);
    p.dispose();
    // MLP matrices above 2 MB are decoded from the stored weights (decodeFromStoredWeights): the tfjs forward
    const wide = sharpPolicy({ seed: 44, hiddenSize: 128, intermediateSize: 4160, numLayers: 1 });
    expect(stepsOf(() => wide.generate([wide.tokenizer.encode('1+1=')], opts))).toBe(0);
    wide.dispose();
    await withBackend('cpu');
    const onCpu = sharpPolicy({ seed: 43 });
    expect(stepsOf(() => onCpu.generate([onCpu.tokenizer.encode('1+1=')], opts))).toBe(0);
    onCpu.dispose();
    await withBackend('wasm');
  });

  test('prepared (transposed) weights are kept while the weights stay, prepared again after an assign, released by dispose', () => {
    const n0 = tf.memory().numTensors;
    const p = sharpPolicy({ seed: 46 });
    const prompts = TEXTS.map((s) => p.tokenizer.encode(s));
    const opts = { maxNewTokens: 12, temperature: 0, stopAtEos: false };
    const a = p.generate(prompts, opts);
    const kept = tf.memory().numTensors;
    expect(p.generate(prompts, opts)).toEqual(a);
    expect(tf.memory().numTensors).toBe(kept); // nothing prepared again
    const v = p.namedVariables().get('model.layers.0.mlp.up_proj.weight')!;
    tf.tidy(() => v.assign(tf.mul(v, -1)));
    const b = p.generate(prompts, opts);
    expect(b.tokens).toEqual(p.generateUncached(prompts, opts).tokens); // the new weights, not the kept copies
    expect(b.tokens).not.toEqual(a.tokens);
    expect(tf.memory().numTensors).toBe(kept); // the old copies are gone
    const q = sharpPolicy({ seed: 47 });
    const withQ = tf.memory().numTensors;
    q.generate(prompts, opts);
    expect(tf.memory().numTensors).toBe(withQ); // one model's copies kept at a time: p's went, q's came
    q.dispose();
    p.dispose();
    expect(tf.memory().numTensors).toBe(n0);
  });

  test('token steps, cache merges and row drops write nothing from JavaScript onto the heap', () => {
    // tf.zeros builds its zeros as a JavaScript array and copies them over: a megabyte of garbage per layer and
    // merge on the tiny default, which made a worker's decoding 20-30% slower. Only the prefill may write.
    const p = sharpPolicy({ seed: 41, numHeads: 4, numKvHeads: 2 });
    const prompts = TEXTS.flatMap((s) => [0, 1, 2].map(() => p.tokenizer.encode(s)));
    const be = tf.backend() as unknown as { write(values: ArrayBufferView | null, shape: number[], dtype: string): unknown };
    const write = be.write;
    let bytes = 0;
    be.write = function (values, shape, dtype) {
      bytes += values?.byteLength ?? 0;
      return write.call(this, values, shape, dtype);
    };
    const written = (maxNewTokens: number) => {
      bytes = 0;
      const before = directDecodeSteps();
      const out = p.generate(prompts, { maxNewTokens, temperature: 1, seed: 5 });
      return { bytes, steps: directDecodeSteps() - before, lengths: new Set(out.tokens.map((t) => t.length)).size };
    };
    try {
      written(40); // warm-up: the prepared weights
      const short = written(2);
      const long = written(40);
      expect(short.steps).toBe(1);
      expect(long.steps).toBeGreaterThan(16); // past a merge of the recent segment into the prefix
      expect(long.lengths).toBeGreaterThan(2); // rows dropped at EOS while others went on
      expect(short.bytes).toBeGreaterThan(0); // the spy sees the prefill's writes
      expect(long.bytes).toBe(short.bytes);
    } finally {
      be.write = write;
      p.dispose();
    }
  });

  test('leaves no tensor behind', () => {
    const p = sharpPolicy({ seed: 45 });
    const prompts = TEXTS.map((s) => p.tokenizer.encode(s));
    p.generate(prompts, { maxNewTokens: 5, temperature: 1, seed: 1 }); // warm-up: weights' derived tensors, kernels
    const before = tf.memory().numTensors;
    p.generate(prompts, { maxNewTokens: 40, temperature: 1, seed: 2 });
    expect(tf.memory().numTensors).toBe(before);
    p.dispose();
  });
});
