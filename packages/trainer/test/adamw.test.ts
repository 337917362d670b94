/**
 * AdamW's fused wasm kernel gives the bits of the tensor formula it replaced (tfjs ops on the wasm backend), so
 * checkpoints and results do not depend on which of the two ran.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '@empo/core';
import { setWasmKernels, useBackend, wasmKernelsActive } from '@empo/policy';
import { AdamW, type AdamWOptions } from '../src/adamw.ts';

beforeAll(async () => {
  await useBackend('wasm');
});

/** The update as tensor ops (the implementation before the host loop). */
class TensorAdamW {
  step = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  constructor(readonly params: Map<string, tf.Variable>, readonly options: AdamWOptions) {
    for (const [name, p] of params) {
      this.m.set(name, tf.variable(tf.zerosLike(p), false));
      this.v.set(name, tf.variable(tf.zerosLike(p), false));
    }
  }
  apply(grads: Map<string, tf.Tensor>, scale: number): void {
    this.step += 1;
    const { learningRate: lr, beta1, beta2, epsilon, weightDecay } = this.options;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    for (const [name, p] of this.params) {
      tf.tidy(() => {
        const g = tf.mul(grads.get(name)!, scale);
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), epsilon));
        const decayed = weightDecay > 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    }
  }
}

const shapes: [string, number[]][] = [['a', [37, 29]], ['b', [301]], ['c', [4, 5, 6]]];

function randomTensors(rng: Rng, std: number): Map<string, tf.Tensor> {
  return new Map(shapes.map(([name, shape]) => {
    const n = shape.reduce((x, y) => x * y, 1);
    return [name, tf.tensor(Float32Array.from({ length: n }, () => rng.normal() * std), shape, 'float32')];
  }));
}

describe('AdamW', () => {
  for (const [label, options, scale] of [
    ['no weight decay, no clipping', { learningRate: 3e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 }, 1],
    ['weight decay, clipped', { learningRate: 1e-2, beta1: 0.9, beta2: 0.95, epsilon: 1e-6, weightDecay: 0.1 }, 0.37],
  ] as const) {
    it(`on wasm's fused kernel gives the tensor formula's weights and moments bit for bit (${label})`, () => {
      const rng = new Rng(7);
      const init = randomTensors(rng, 0.02);
      const vars = (prefix: string) => new Map([...init].map(([name, t]) => [name, tf.variable(t.clone(), true, `${prefix}${name}`)]));
      const fusedParams = vars(`fused-${scale}-`);
      const tensorParams = vars(`tensor-${scale}-`);
      const fused = new AdamW(fusedParams, { ...options });
      const reference = new TensorAdamW(tensorParams, { ...options });
      expect(wasmKernelsActive('fused')).toBe(true);
      for (let step = 0; step < 4; step++) {
        const grads = randomTensors(rng, 10 ** (step - 3));
        fused.apply(grads, scale);
        reference.apply(grads, scale);
        tf.dispose([...grads.values()]);
      }
      const moments = fused.stateTensors();
      for (const [name, p] of fusedParams) {
        expect(Array.from(p.dataSync()), name).toEqual(Array.from(tensorParams.get(name)!.dataSync()));
        expect(Array.from(moments.get(`exp_avg.${name}`)!.dataSync()), name).toEqual(Array.from(reference.m.get(name)!.dataSync()));
        expect(Array.from(moments.get(`exp_avg_sq.${name}`)!.dataSync()), name).toEqual(Array.from(reference.v.get(name)!.dataSync()));
      }
      fused.dispose();
      tf.dispose([...init.values(), ...fusedParams.values(), ...tensorParams.values(), ...reference.m.values(), ...reference.v.values()]);
    });
  }

  it('without the kernels, takes the tensor ops, with the same result', () => {
    const rng = new Rng(8);
    const init = randomTensors(rng, 0.02);
    const grads = randomTensors(rng, 0.1);
    const options: AdamWOptions = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 };
    const run = (kernels: boolean) => {
      setWasmKernels(kernels);
      try {
        const params = new Map([...init].map(([n, t]) => [n, tf.variable(t.clone(), true, `plain-${kernels}-${n}`)]));
        const optimizer = new AdamW(params, options);
        const before = tf.memory().numTensors;
        optimizer.apply(grads, 0.5);
        optimizer.apply(grads, 1);
        expect(tf.memory().numTensors).toBe(before); // nothing leaks
        const out = [...params.values()].map((p) => Array.from(p.dataSync()));
        optimizer.dispose();
        tf.dispose([...params.values()]);
        return out;
      } finally {
        setWasmKernels(true);
      }
    };
    expect(run(true)).toEqual(run(false));
    tf.dispose([...init.values(), ...grads.values()]);
  });
});
