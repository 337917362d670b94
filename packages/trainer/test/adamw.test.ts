/**
 * AdamW's fused wasm kernel gives the bits of the tensor ops it replaced (the optimizer's path with the kernels
 * off), so checkpoints and results do not depend on which of the two ran.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '@empo/core';
import { setWasmKernels, useBackend, wasmKernelsActive } from '@empo/policy';
import { AdamW, globalNorm, type AdamWOptions } from '../src/adamw.ts';

beforeAll(async () => {
  await useBackend('wasm');
});

const shapes: [string, number[]][] = [['a', [37, 29]], ['b', [301]], ['c', [4, 5, 6]]];

function randomTensors(rng: Rng, std: number): Map<string, tf.Tensor> {
  return new Map(shapes.map(([name, shape]) => {
    const n = shape.reduce((x, y) => x * y, 1);
    return [name, tf.tensor(Float32Array.from({ length: n }, () => rng.normal() * std), shape, 'float32')];
  }));
}

/** Four AdamW steps from the same start and gradients, with the wasm kernels on or off: weights and moments. */
function run(kernels: boolean, options: AdamWOptions, scale: number): { values: Map<string, number[]>; leaked: number } {
  setWasmKernels(kernels);
  try {
    expect(wasmKernelsActive('fused')).toBe(kernels);
    const rng = new Rng(7);
    const params = new Map([...randomTensors(rng, 0.02)].map(([name, t]) => [name, tf.variable(t, true, `${kernels}-${scale}-${name}`)]));
    const optimizer = new AdamW(params, { ...options });
    const before = tf.memory().numTensors;
    for (let step = 0; step < 4; step++) {
      const grads = randomTensors(rng, 10 ** (step - 3)); // magnitudes 1e-3 .. 1
      optimizer.apply(grads, scale);
      tf.dispose([...grads.values()]);
    }
    const leaked = tf.memory().numTensors - before;
    const values = new Map<string, number[]>();
    for (const [name, p] of params) values.set(name, Array.from(p.dataSync()));
    for (const [name, t] of optimizer.stateTensors()) values.set(name, Array.from(t.dataSync()));
    optimizer.dispose();
    tf.dispose([...params.values()]);
    return { values, leaked };
  } finally {
    setWasmKernels(true);
  }
}

describe('AdamW', () => {
  for (const [label, options, scale] of [
    ['no weight decay, no clipping', { learningRate: 3e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 }, 1],
    ['weight decay, clipped', { learningRate: 1e-2, beta1: 0.9, beta2: 0.95, epsilon: 1e-6, weightDecay: 0.1 }, 0.37],
  ] as const) {
    it(`on wasm's fused kernel gives the tensor ops' weights and moments bit for bit, leaking nothing (${label})`, () => {
      const fused = run(true, options, scale);
      const plain = run(false, options, scale);
      expect(fused.leaked).toBe(0);
      expect(plain.leaked).toBe(0);
      expect([...fused.values.keys()]).toEqual([...plain.values.keys()]);
      for (const [name, values] of fused.values) expect(values, name).toEqual(plain.values.get(name));
      const unmoved = run(false, options, 0).values; // zero gradients
      const moved = [...fused.values].some(([name, values]) => !name.startsWith('exp_') && values.some((x, i) => x !== unmoved.get(name)![i]));
      expect(moved).toBe(true); // the gradients did change the weights
    });
  }
});

describe('globalNorm', () => {
  it("on wasm's one-pass kernel gives the tensor ops' norm bit for bit, leaking nothing", () => {
    const rng = new Rng(3);
    // sizes that repeat (the kernel sums four tensors of one size per pass) and sizes that do not
    const shapes = [[512, 128], [301], [37, 29], [4, 5, 6], [1], [301], [37, 29], [301], [37, 29], [301], [37, 29], [301], [1]];
    const grads = shapes.map((shape, i) => {
      const n = shape.reduce((x, y) => x * y, 1);
      return tf.tensor(Float32Array.from({ length: n }, () => rng.normal() * 10 ** ((i % 5) - 2)), shape, 'float32');
    });
    const norm = (kernels: boolean) => {
      setWasmKernels(kernels);
      try {
        expect(wasmKernelsActive('fused')).toBe(kernels);
        const before = tf.memory().numTensors;
        const value = globalNorm(grads);
        expect(tf.memory().numTensors).toBe(before);
        return value;
      } finally {
        setWasmKernels(true);
      }
    };
    const fused = norm(true);
    expect(fused).toBe(norm(false));
    let exact = 0;
    for (const g of grads) for (const x of g.dataSync()) exact += x * x;
    expect(Math.abs(fused - Math.sqrt(exact)) / Math.sqrt(exact)).toBeLessThan(1e-6); // and it is the norm
    tf.dispose(grads);
  });
});
