/**
 * The wasm backend (the fast one on CPU-only Node): agrees with cpu, differentiates without a gather
 * gradient kernel, and leaks no tensors.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, test } from 'vitest';
import type { Policy } from '../src/index.ts';
import { maxAbsDiff, randomPolicy, sharpPolicy, withBackend } from './helpers.ts';

const TEXTS = ['what is 12+30?', '1+1=2', 'x=7, y=8, x*y=56'];

beforeAll(() => withBackend('wasm'));

function onBackend<T>(name: 'cpu' | 'wasm', f: () => T): Promise<T> {
  return withBackend(name).then(f);
}

describe('wasm', () => {
  test('the backend really is wasm', () => {
    expect(tf.getBackend()).toBe('wasm');
  });

  test('logits, log-probs and greedy generations agree with the cpu backend', async () => {
    const run = (backend: 'cpu' | 'wasm') =>
      onBackend(backend, () => {
        const p = sharpPolicy({ seed: 31, numHeads: 4, numKvHeads: 2 });
        const ids = TEXTS.map((s) => p.tokenizer.encode(s));
        const out = {
          logits: tf.tidy(() => p.logits(ids).arraySync()),
          gen: p.generate(ids, { maxNewTokens: 20, temperature: 0, stopAtEos: false }),
          lp: p.completionLogprobs(ids, ids),
        };
        p.dispose();
        return out;
      });
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    expect(maxAbsDiff(wasm.logits, cpu.logits)).toBeLessThan(1e-3);
    expect(wasm.gen.tokens).toEqual(cpu.gen.tokens);
    expect(maxAbsDiff(wasm.gen.logprobs, cpu.gen.logprobs)).toBeLessThan(1e-3);
    expect(maxAbsDiff(wasm.lp, cpu.lp)).toBeLessThan(1e-3);
    await withBackend('wasm');
  });

  test('KV-cache generation equals uncached generation on wasm (sampling, GQA)', () => {
    const p = sharpPolicy({ seed: 32, numHeads: 4, numKvHeads: 2 });
    const ids = TEXTS.map((s) => p.tokenizer.encode(s));
    const opt = { maxNewTokens: 30, temperature: 0.9, topP: 0.95, seed: 7, stopAtEos: false };
    const a = p.generate(ids, opt);
    const b = p.generateUncached(ids, opt);
    expect(a.tokens).toEqual(b.tokens);
    expect(maxAbsDiff(a.logprobs, b.logprobs)).toBeLessThan(1e-4);
    expect(maxAbsDiff(a.logprobs, p.completionLogprobs(ids, a.tokens, { temperature: 0.9 }))).toBeLessThan(1e-4);
    p.dispose();
  });

  test('gradients of a log-prob loss reach every variable (no gather gradient needed) and match cpu', async () => {
    const grads = (backend: 'cpu' | 'wasm') =>
      onBackend(backend, () => {
        const p = sharpPolicy({ seed: 33, tieWordEmbeddings: false });
        const seqs = TEXTS.map((s) => p.tokenizer.encode(s)); // ragged
        const { value, grads } = tf.variableGrads(() => tf.neg(tf.mean(p.sequenceLogprobs(seqs))) as tf.Scalar, p.variables());
        const out = new Map([...p.namedVariables()].map(([name, v]) => [name, Array.from(grads[v.name]!.dataSync())]));
        tf.dispose([value, ...Object.values(grads)]);
        p.dispose();
        return out;
      });
    const wasm = await grads('wasm');
    const cpu = await grads('cpu');
    await withBackend('wasm');
    expect(wasm.size).toBeGreaterThan(10);
    for (const [name, g] of wasm) {
      const norm = Math.sqrt(g.reduce((a, v) => a + v * v, 0));
      expect(Number.isFinite(norm), name).toBe(true);
      expect(norm, name).toBeGreaterThan(1e-6);
      const ref = cpu.get(name)!;
      const scale = Math.max(...ref.map(Math.abs));
      expect(maxAbsDiff(g, ref) / scale, name).toBeLessThan(1e-3);
    }
  });

  test('an optimizer step lowers the loss', () => {
    const p = randomPolicy({ seed: 34 });
    const seqs = TEXTS.map((s) => p.tokenizer.encode(s));
    const opt = tf.train.adam(1e-2);
    const loss = () => tf.neg(tf.mean(p.sequenceLogprobs(seqs))) as tf.Scalar;
    const before = tf.tidy(() => loss().dataSync()[0]!);
    for (let i = 0; i < 5; i++) opt.minimize(loss, false, p.variables());
    const after = tf.tidy(() => loss().dataSync()[0]!);
    expect(after).toBeLessThan(before - 0.1);
    opt.dispose();
    p.dispose();
  });

  test('numTensors is flat across repeated generate / logprob / gradient calls', () => {
    const p: Policy = randomPolicy({ seed: 35 });
    const ids = TEXTS.map((s) => p.tokenizer.encode(s));
    const opt = tf.train.sgd(1e-3);
    const round = () => {
      p.generate(ids, { maxNewTokens: 20, temperature: 1, seed: 1 });
      p.generate(ids, { maxNewTokens: 20, temperature: 0, stopAtEos: false });
      p.generateUncached(ids, { maxNewTokens: 3, temperature: 0 });
      p.completionLogprobs(ids, ids);
      tf.tidy(() => p.sequenceLogprobs(ids).dataSync());
      tf.tidy(() => p.logits(ids).dataSync());
      const { value, grads } = tf.variableGrads(() => tf.sum(p.sequenceLogprobs(ids)) as tf.Scalar, p.variables());
      tf.dispose([value, ...Object.values(grads)]);
      opt.minimize(() => tf.neg(tf.mean(p.sequenceLogprobs(ids))) as tf.Scalar, false, p.variables());
    };
    round(); // warm-up (the optimizer creates its state once)
    const n0 = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      round();
      expect(tf.memory().numTensors).toBe(n0);
    }
    opt.dispose();
    p.dispose();
  });
});
