/**
 * Test helpers (also usable by other packages' tests): small random policies and a fixed tokenizer.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@empo/core';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CharTokenizer, Policy, tinyConfig, useBackend, type BackendName, type TinyConfigOptions } from '../src/index.ts';

/** Characters of the default test tokenizer. */
export const TEST_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789 +-*/=?.,:';

export function testTokenizer(): CharTokenizer {
  return CharTokenizer.fromChars(TEST_CHARS);
}

export interface RandomPolicyOptions extends Partial<TinyConfigOptions> {
  seed?: number;
  tokenizer?: CharTokenizer;
}

/**
 * A small randomly initialised Policy (defaults: d=32, 2 layers, 4 heads, 2 kv heads, MLP 64, tied
 * embeddings, q/k/v biases) with the test tokenizer. Any TinyConfigOptions field can be overridden.
 */
export function randomPolicy(opts: RandomPolicyOptions = {}): Policy {
  const { seed = 1, tokenizer = testTokenizer(), ...sizes } = opts;
  const config = tinyConfig({
    vocabSize: tokenizer.vocabSize,
    hiddenSize: 32,
    intermediateSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    bosId: tokenizer.bosId,
    eosId: tokenizer.eosId,
    padId: tokenizer.padId,
    ...sizes,
  });
  return Policy.init(config, tokenizer, seed);
}

/**
 * Like randomPolicy, but with weights that make every part of the model matter: matrices scaled to std 0.3,
 * norm weights 1 + 0.2 N(0,1), biases 0.5 N(0,1). Logits then vary a lot between tokens and positions,
 * so greedy decoding is sensitive to any numerical mistake.
 */
export function sharpPolicy(opts: RandomPolicyOptions = {}): Policy {
  const p = randomPolicy(opts);
  for (const [name, v] of p.namedVariables()) {
    const rng = Rng.derive(opts.seed ?? 1, 'sharp', name);
    const noise = () => tf.tensor(Float32Array.from({ length: v.size }, () => rng.normal()), v.shape);
    tf.tidy(() => {
      if (name.endsWith('.bias')) v.assign(tf.mul(noise(), 0.5));
      else if (name.endsWith('norm.weight')) v.assign(tf.add(1, tf.mul(noise(), 0.2)));
      else v.assign(tf.mul(v, 15));
    });
  }
  return p;
}

export async function withBackend(name: BackendName): Promise<void> {
  await useBackend(name);
}

/** A fresh temporary directory; remove it with the returned cleanup. */
export async function tempDir(prefix = 'empo-policy-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Largest absolute difference between two equally shaped nested arrays of numbers. */
export function maxAbsDiff(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b);
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return Infinity;
    return a.reduce((m: number, x, i) => Math.max(m, maxAbsDiff(x, b[i])), 0);
  }
  return Infinity;
}
