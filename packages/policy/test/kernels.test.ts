/**
 * The wasm SIMD matmul kernels (kernels/matmul.ts): they agree with tf.matMul for every shape class (tiles of
 * 4 x 8, 4-column and single-column tails, single rows, K not a multiple of 4), a row's result does not depend
 * on the rest of its batch (bit for bit), and they leak no tensors.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, test } from 'vitest';
import { batchMatMul, batchMatMulNT, batchMatMulTN, setWasmKernels, sumOfSquares, sumsOfSquares } from '../src/index.ts';
import { readFileSync } from 'node:fs';
import { concat, gatherRows, readInto, slice, transposeKernelCalls, useTransposeKernel } from '../src/kernels/copy.ts';
import { parseKernelGroups, relaxedSimdAvailable } from '../src/kernels/runtime.ts';
import { rmsNormForward, ropeForward } from '../src/kernels/fused.ts';
import { columnSumCalls, elementwiseLoopCalls, useElementwiseKernels } from '../src/kernels/elementwise.ts';
import { decodeFromStoredWeights, forward, linear, prepareWeights, tidy, weightStationary } from '../src/model.ts';
import { sharpPolicy, withBackend } from './helpers.ts';

beforeAll(() => withBackend('wasm'));

const SHAPES: [number[], number, number, number][] = [
  // batch dims, M, K, N
  [[1], 1, 1, 1],
  [[2], 3, 5, 7],
  [[3], 9, 17, 13],
  [[2, 2], 4, 8, 8],
  [[2, 3], 5, 4, 16],
  [[1, 4], 63, 32, 63],
  [[2, 4], 63, 63, 32],
  [[3, 2], 1, 32, 70],
  [[], 9, 600, 21],
];

function relErr(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! / Math.max(1e-6, tf.max(tf.abs(b)).dataSync()[0]!));
}

describe('wasm matmul kernels', () => {
  test('a @ b and a @ b^T agree with tf.matMul', () => {
    for (const [batch, M, K, N] of SHAPES) {
      tf.tidy(() => {
        const a = tf.randomNormal([...batch, M, K], 0, 1, 'float32', 1);
        const b = tf.randomNormal([...batch, K, N], 0, 1, 'float32', 2);
        const bt = tf.randomNormal([...batch, N, K], 0, 1, 'float32', 3);
        expect(relErr(batchMatMul(a, b), tf.matMul(a, b)), `${batch} ${M}x${K}x${N}`).toBeLessThan(1e-5);
        expect(relErr(batchMatMulNT(a, bt), tf.matMul(a, bt, false, true)), `NT ${batch} ${M}x${K}x${N}`).toBeLessThan(1e-5);
        const at = tf.randomNormal([...batch, K, M], 0, 1, 'float32', 4);
        expect(relErr(batchMatMulTN(at, b), tf.matMul(at, b, true, false)), `TN ${batch} ${M}x${K}x${N}`).toBeLessThan(1e-5);
        // a^T b sums k in the same order as transposing a first: the same bits
        expect(batchMatMulTN(at, b).arraySync()).toEqual(batchMatMul(tf.transpose(at, [...batch.keys(), batch.length + 1, batch.length]), b).arraySync());
      });
    }
  });

  test('a^T @ b reads A through a packed panel: transpose-then-a @ b bits with and without fused multiply-adds, panel freed', () => {
    // M with and without a tail of single rows, K within one block, across blocks (K_BLOCK 256), and the trainer's shapes
    const shapes: [number[], number, number, number][] = [[[], 4, 3, 8], [[], 9, 257, 21], [[2], 63, 600, 13], [[], 128, 1312, 36], [[], 130, 513, 9]];
    const backend = tf.engine().backend as unknown as { numDataIds(): number };
    for (const fma of [true, false]) {
      setWasmKernels(fma ? true : ['matmul', 'tn']);
      try {
        for (const [batch, M, K, N] of shapes) {
          tf.tidy(() => {
            const at = tf.randomNormal([...batch, K, M], 0, 1, 'float32', 7);
            const b = tf.randomNormal([...batch, K, N], 0, 1, 'float32', 8);
            const reference = batchMatMul(tf.transpose(at, [...batch.keys(), batch.length + 1, batch.length]), b).dataSync();
            const ids = backend.numDataIds();
            const tn = batchMatMulTN(at, b);
            expect(backend.numDataIds(), `${fma} ${M}x${K}x${N}: the panel is freed`).toBe(ids + 1);
            expect([...tn.dataSync()], `${fma ? 'fma' : 'plain'} ${batch} ${M}x${K}x${N}`).toEqual([...reference]);
          });
        }
      } finally {
        setWasmKernels(true);
      }
    }
  });

  test('the kernels run (not the fallback) and can be switched off', () => {
    const names: string[] = [];
    const a = tf.ones([2, 3, 4]);
    const b = tf.ones([2, 4, 5]);
    const run = () => tf.tidy(() => batchMatMul(a, b).dataSync());
    const spy = (tf.engine() as unknown as { runKernel: (n: string, ...rest: unknown[]) => unknown });
    const orig = spy.runKernel.bind(spy);
    spy.runKernel = (n: string, ...rest: unknown[]) => (names.push(n), orig(n, ...rest));
    try {
      run();
      setWasmKernels(false);
      run();
    } finally {
      setWasmKernels(true);
      spy.runKernel = orig;
      tf.dispose([a, b]);
    }
    expect(names[0]).toBe('EmpoBatchMatMul');
    expect(names[1]).toBe('BatchMatMul');
  });

  test('the fused multiply-add kernels round once per term; the plain ones twice; both agree to float32 rounding', () => {
    // Node 20 has relaxed SIMD behind a V8 flag that relaxedSimdAvailable switches on; later Node versions have it on
    expect(relaxedSimdAvailable()).toBe(true);
    const cpuHasFma = (() => {
      try {
        return / fma /.test(readFileSync('/proc/cpuinfo', 'utf8').replace(/\n/g, ' '));
      } catch {
        return false;
      }
    })();
    // a . b = -(1 + 2^-11) + (1 + 2^-12)^2 = 2^-24 exactly; rounding the product first gives 0
    const a = tf.tensor3d([[[1, 1 + 2 ** -12]]]);
    const b = tf.tensor3d([[[-(1 + 2 ** -11)], [1 + 2 ** -12]]]);
    const bt = tf.tensor3d([[[-(1 + 2 ** -11), 1 + 2 ** -12]]]);
    const wide = tf.tile(b, [1, 1, 9]) as tf.Tensor3D; // 8 vector columns and a scalar tail: every tile
    try {
      setWasmKernels(['matmul', 'tn']);
      expect(batchMatMul(a, b).dataSync()[0]).toBe(0);
      expect(batchMatMulNT(a, bt).dataSync()[0]).toBe(0);
      setWasmKernels(true);
      const fused = cpuHasFma ? 2 ** -24 : 0;
      expect(batchMatMul(a, b).dataSync()[0]).toBe(fused);
      expect(batchMatMulNT(a, bt).dataSync()[0]).toBe(fused);
      expect([...batchMatMul(a, wide).dataSync()]).toEqual(new Array(9).fill(fused));
      for (const [batch, M, K, N] of SHAPES) {
        tf.tidy(() => {
          const x = tf.randomNormal([...batch, M, K], 0, 1, 'float32', 1);
          const y = tf.randomNormal([...batch, K, N], 0, 1, 'float32', 2);
          const withFma = batchMatMul(x, y);
          setWasmKernels(['matmul']);
          expect(relErr(withFma, batchMatMul(x, y)), `${batch} ${M}x${K}x${N}`).toBeLessThan(1e-5);
          setWasmKernels(true);
        });
      }
    } finally {
      setWasmKernels(true);
      tf.dispose([a, b, bt, wide]);
    }
  });

  test('EMPO_WASM_KERNELS: all, none, a list; an unknown group is an error naming the variable', () => {
    expect(parseKernelGroups(undefined).size).toBe(6);
    expect(parseKernelGroups('0').size).toBe(0);
    expect([...parseKernelGroups('matmul, fma')]).toEqual(['matmul', 'fma']);
    expect(() => parseKernelGroups('matmul,fast')).toThrow(/EMPO_WASM_KERNELS: unknown kernel group 'fast'/);
  });

  test('a row gets the same bits whatever else is in the batch', () => {
    tf.tidy(() => {
      const a = tf.randomNormal([6, 4, 9, 32], 0, 1, 'float32', 4) as tf.Tensor4D;
      const b = tf.randomNormal([6, 4, 32, 23], 0, 1, 'float32', 5) as tf.Tensor4D;
      const bt = tf.randomNormal([6, 4, 23, 32], 0, 1, 'float32', 6) as tf.Tensor4D;
      const whole = batchMatMul(a, b).arraySync() as number[][][][];
      const wholeNT = batchMatMulNT(a, bt).arraySync() as number[][][][];
      // batch entry 3 alone, and its query row 5 alone
      const one = (t: tf.Tensor4D, r?: number): tf.Tensor4D => (r === undefined ? tf.slice(t, [3, 0, 0, 0], [1, -1, -1, -1]) : tf.slice(t, [3, 0, r, 0], [1, -1, 1, -1]));
      expect((batchMatMul(one(a), one(b)).arraySync() as number[][][][])[0]).toEqual(whole[3]);
      expect((batchMatMulNT(one(a), one(bt)).arraySync() as number[][][][])[0]).toEqual(wholeNT[3]);
      const row = (batchMatMul(one(a, 5), one(b)).arraySync() as number[][][][])[0]!.map((h) => h[0]);
      expect(row).toEqual(whole[3]!.map((h) => h[5]));
    });
  });

  test('fused RMSNorm and RoPE agree with their tfjs formulas', () => {
    tf.tidy(() => {
      for (const D of [1, 7, 32, 130]) {
        const x = tf.randomNormal([5, D], 0, 2, 'float32', D) as tf.Tensor2D;
        const w = tf.randomNormal([D], 1, 0.2, 'float32', D + 1) as tf.Tensor1D;
        const ref = tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-6))), w);
        expect(relErr(rmsNormForward(x, w, 1e-6), ref), `D=${D}`).toBeLessThan(1e-6);
      }
      for (const [B, T, H, hd, P] of [[2, 3, 4, 8, 1], [3, 5, 2, 32, 3], [1, 1, 3, 16, 1]] as const) {
        const x = tf.randomNormal([B, T, H, hd], 0, 1, 'float32', 7) as tf.Tensor4D;
        const cos = tf.randomUniform([P, T, 1, hd], -1, 1, 'float32', 8) as tf.Tensor4D;
        const sin = tf.randomUniform([P, T, 1, hd], -1, 1, 'float32', 9) as tf.Tensor4D;
        const [x1, x2] = tf.split(x, 2, -1);
        const ref = tf.mul(tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(x2!), x1!], -1), sin)), 0.5);
        expect(relErr(ropeForward(x, cos, sin, 0.5), ref), `${B},${T},${H},${hd}`).toBeLessThan(1e-6);
      }
    });
  });

  test('row gathers, concat and slices equal tfjs ops, bit for bit', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([6, 3, 5, 4], 0, 1, 'float32', 10) as tf.Tensor4D;
      const y = tf.randomNormal([6, 3, 2, 4], 0, 1, 'float32', 11) as tf.Tensor4D;
      expect(gatherRows(x, [5, 0, 1, 2, 2]).arraySync()).toEqual(tf.gather(x, [5, 0, 1, 2, 2]).arraySync());
      expect(concat([x, y], 2).arraySync()).toEqual(tf.concat([x, y], 2).arraySync());
      expect(concat([x, x], 3).arraySync()).toEqual(tf.concat([x, x], 3).arraySync());
      expect(slice(x, 3, 1, 2).arraySync()).toEqual(tf.slice(x, [0, 0, 0, 1], [-1, -1, -1, 2]).arraySync());
      expect(slice(x, 2, 4, 1).arraySync()).toEqual(tf.slice(x, [0, 0, 4, 0], [-1, -1, 1, -1]).arraySync());
      // gradients: slice pads, concat slices
      const gs = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(slice(t as tf.Tensor4D, 3, 1, 2), 3)))(x);
      expect(gs.arraySync()).toEqual(tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.slice(t, [0, 0, 0, 1], [-1, -1, -1, 2]), 3)))(x).arraySync());
      const gc = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(concat([t as tf.Tensor4D, y], 2), tf.range(0, 4))))(x);
      expect(gc.arraySync()).toEqual(tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.concat([t, y], 2), tf.range(0, 4))))(x).arraySync());
    });
  });

  test('Add and Multiply with a repeated operand give the bits of tfjs-wasm\'s kernels; other broadcasts fall back', () => {
    useElementwiseKernels();
    const special = [0, -0, 1e-40, -3e-39, 3.4e38, -3.4e38, Infinity, -Infinity, 1, -1, 0.1, 1 / 3];
    const values = (n: number, seed: number) => {
      const r = tf.randomNormal([n], 0, 1e3, 'float32', seed).dataSync() as Float32Array;
      return Float32Array.from(r, (v, i) => (i % 5 === 0 ? special[(i / 5 + seed) % special.length]! : v));
    };
    const pairs: [number[], number[], boolean][] = [
      // a's shape, b's shape, whether the SIMD loop takes it
      [[7, 13], [7, 13], true], // same shape (a residual)
      [[3, 5, 12], [12], true], // bias over rows (with a tail of 0 floats: 12 = 3 vectors)
      [[6, 33], [33], true], // a scalar tail of 1 float
      [[2], [3, 2], true], // the smaller operand first
      [[4, 9], [1, 9], true], // leading 1s
      [[5, 3], [], false], // a scalar: tfjs' kernel (its own scalar loop is faster than rows of one float)
      [[1], [6, 8], false], // a one-element operand: the same
      [[4, 6], [4, 1], false], // not a suffix: tfjs' kernel
      [[2, 1, 8], [2, 3, 8], false], // neither contains the other: tfjs' kernel
    ];
    for (const [sa, sb, loop] of pairs) {
      tf.tidy(() => {
        const a = tf.tensor(values(sa.reduce((x, y) => x * y, 1), 1), sa);
        const b = tf.tensor(values(sb.reduce((x, y) => x * y, 1), 2), sb);
        const run = () => [tf.add(a, b), tf.mul(a, b), tf.add(b, a)].map((t) => ({ shape: t.shape, bits: new Uint32Array((t.dataSync() as Float32Array).buffer) }));
        const before = elementwiseLoopCalls();
        const ours = run();
        expect(elementwiseLoopCalls() - before).toBe(loop ? 3 : 0);
        setWasmKernels(['matmul', 'tn', 'copy', 'fused', 'fma']); // all but elementwise
        const theirs = run();
        expect(elementwiseLoopCalls() - before).toBe(loop ? 3 : 0);
        setWasmKernels(true);
        expect(ours).toEqual(theirs);
      });
    }
  });

  test('Sum over leading axes gives the bits of tfjs-wasm\'s kernel (rows added in order); other reductions fall back', () => {
    useElementwiseKernels();
    const special = [0, -0, -0, 1e-40, -3e-39, 3.4e38, 3.4e38, -Infinity, 1, 0.1, 1 / 3, 1e8, -1e8];
    const cases: [number[], number | number[], boolean][] = [
      // shape, axis, whether the column loop takes it
      [[1312, 128], 0, true], // a bias gradient
      [[1312, 128], [0], true],
      [[7, 13], -2, true], // a negative axis; 13 columns = 3 vectors and a float
      [[3, 5, 6], [0, 1], true], // two leading axes
      [[3, 5, 6], [1, 0], false], // the same axes listed the other way: tfjs sums axis 1 outermost, so its kernel
      [[4, 3], 0, true], // fewer columns than a vector
      [[1, 9], 0, true], // one row
      [[6, 8], 1, false], // the last axis: tfjs' kernel
      [[6, 8], [0, 1], false], // every axis: tfjs' kernel
      [[2, 3, 4], [0, 2], false], // not leading
    ];
    for (const [shape, axis, loop] of cases) {
      for (const keepDims of [false, true]) {
        tf.tidy(() => {
          const n = shape.reduce((x, y) => x * y, 1);
          const data = Float32Array.from(tf.randomNormal([n], 0, 100, 'float32', n).dataSync(), (v, i) => (i % 7 === 0 ? special[(i / 7) % special.length]! : v));
          const x = tf.tensor(data, shape);
          const run = () => {
            const t = tf.sum(x, axis, keepDims);
            return { shape: t.shape, bits: new Uint32Array((t.dataSync() as Float32Array).buffer) };
          };
          const before = columnSumCalls();
          const ours = run();
          expect(columnSumCalls() - before, `${shape} ${axis}`).toBe(loop ? 1 : 0);
          setWasmKernels(['matmul', 'tn', 'copy', 'fused', 'fma']); // all but elementwise
          const theirs = run();
          setWasmKernels(true);
          expect(ours, `${shape} axis ${axis} keepDims ${keepDims}`).toEqual(theirs);
        });
      }
    }
  });

  test('outside a gradient tape, concat and slice are one kernel call each (no tf.customGrad copies)', async () => {
    const x = tf.randomNormal([2, 3, 5, 4]) as tf.Tensor4D;
    const y = tf.randomNormal([2, 3, 2, 4]) as tf.Tensor4D;
    const kernels = async (f: () => tf.Tensor) => (await tf.profile(() => f())).kernels.map((k) => k.name);
    expect(await kernels(() => concat([x, y], 2))).toEqual(['EmpoConcat']);
    expect(await kernels(() => slice(x, 2, 1, 3))).toEqual(['EmpoSlice']);
    tf.dispose([x, y]);
  });

  test('no tensor leaks', () => {
    const a = tf.randomNormal([2, 5, 7]);
    const b = tf.randomNormal([2, 7, 3]);
    const before = tf.memory().numTensors;
    const bt = tf.transpose(b, [0, 2, 1]) as tf.Tensor3D;
    for (let i = 0; i < 5; i++) tf.dispose([batchMatMul(a, b), batchMatMulNT(a, bt)]);
    tf.tidy(() => {
      batchMatMulNT(a, bt);
    });
    bt.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b]);
  });
});

describe('Linear layers with the weight as stored (W [out, in])', () => {
  const bits = (t: tf.Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));

  test('weightStationary: the activations are transposed when they are smaller than the weight', () => {
    expect(weightStationary(64, 896, 4864)).toBe(true); // a decoding step of a 0.5B model
    expect(weightStationary(2048, 128, 512)).toBe(false); // a training micro-batch of the tiny model
    expect(weightStationary(103, 128, 512)).toBe(false); // 103 x 640 > 128 x 512
    expect(weightStationary(102, 128, 512)).toBe(true);
  });

  test('decoding uses the stored weights when the MLP matrices exceed 2 MB or the model needs lazy layers', () => {
    const p = sharpPolicy({ seed: 3 });
    const sized = (hidden_size: number, intermediate_size: number, num_hidden_layers = 4) => ({ ...p.config, hidden_size, intermediate_size, num_hidden_layers });
    expect(decodeFromStoredWeights(p.config)).toBe(false);
    expect(decodeFromStoredWeights(sized(128, 512))).toBe(false); // the tiny default's shapes
    expect(decodeFromStoredWeights(sized(256, 1024))).toBe(false); // 1 MB
    expect(decodeFromStoredWeights(sized(384, 1536))).toBe(true); // 2.25 MB
    expect(decodeFromStoredWeights(sized(128, 512, 1000))).toBe(true); // small matrices, but too many for a copy
    p.dispose();
  });

  test('x @ W^T as (W @ x^T)^T: the same bits as transposing W, with W read as it lies', async () => {
    for (const [rows, inDim, outDim] of [[8, 96, 160], [1, 33, 70], [5, 256 + 7, 300], [300, 96, 160]] as const) {
      const x = tf.randomNormal([rows, inDim], 0, 1, 'float32', rows) as tf.Tensor2D;
      const w = tf.randomNormal([outDim, inDim], 0, 1, 'float32', inDim) as tf.Tensor2D;
      const expected = tf.tidy(() => batchMatMul(x, tf.transpose(w)));
      const { result, kernels } = await (async () => {
        let out: tf.Tensor | null = null;
        const info = await tf.profile(() => (out = linear(x, w)));
        return { result: out!, kernels: info.kernels };
      })();
      expect(result.shape).toEqual([rows, outDim]);
      expect(bits(result)).toEqual(bits(expected));
      const products = kernels.filter((k) => k.name === 'EmpoBatchMatMul');
      expect(products).toHaveLength(1);
      // weight-stationary: the product's first operand is W itself; otherwise x is
      expect(products[0]!.inputShapes[0]).toEqual(weightStationary(rows, inDim, outDim) ? [outDim, inDim] : [rows, inDim]);
      tf.dispose([x, w, expected, result]);
    }
  });

  test('a decoding step over the stored weights (lazy layers) gives the logits of the transposed copies, bit for bit', () => {
    const p = sharpPolicy({ seed: 37, numLayers: 2, numHeads: 4, numKvHeads: 2, attentionBias: true });
    const prompt = [[1, 5, 6, 7, 8], [1, 7, 7, 9, 3]];
    const step = (lazyLayers: boolean) =>
      tidy(() => {
        const w = prepareWeights(p.config, p.weights, { lazyLayers, transposed: !lazyLayers });
        const pre = forward(p.config, w, { ids: prompt }, { lastOnly: true });
        const cache = { k: pre.kv.k.map((t) => [t]), v: pre.kv.v.map((t) => [t]) };
        const next = forward(p.config, w, { ids: [[9], [4]], positions: [[5], [5]] }, { cache, lastOnly: true });
        return bits(next.logits).concat(bits(pre.logits));
      });
    expect(step(true)).toEqual(step(false));
    p.dispose();
  });
});

describe('inference without a gradient tape', () => {
  test('computes the same bits as the taped forward (custom-gradient wrappers skipped only when nothing records)', () => {
    const p = sharpPolicy({ seed: 31, numLayers: 2, numHeads: 4, numKvHeads: 2, attentionBias: true });
    const seqs = [[1, 5, 6, 7, 8, 9, 10], [1, 7, 7, 9, 3, 4, 11]];
    const untaped = p.sequenceLogprobs(seqs);
    let taped: number[][] = [];
    const { value, grads } = tf.variableGrads(() => {
      const lp = p.sequenceLogprobs(seqs);
      taped = lp.arraySync() as number[][];
      return tf.sum(lp) as tf.Scalar;
    }, p.variables());
    expect(untaped.arraySync()).toEqual(taped);
    expect(Object.keys(grads).length).toBe(p.variables().length); // the taped path did differentiate every weight
    tf.dispose([untaped, value, ...Object.values(grads)]);
    p.dispose();
  });
});

describe('readInto', () => {
  test("copies a tensor's values into an array at an offset, as dataSync reads them (wasm heap and cpu)", async () => {
    for (const backend of ['wasm', 'cpu'] as const) {
      await withBackend(backend);
      const x = tf.tidy(() => tf.add(tf.randomNormal([3, 5], 0, 1, 'float32', 7), 1)); // a kernel's output
      const out = new Float32Array(20).fill(-7);
      readInto(x, out, 4);
      expect([...out.subarray(0, 4)]).toEqual([-7, -7, -7, -7]);
      expect([...out.subarray(4, 19)]).toEqual([...(x.dataSync() as Float32Array)]);
      expect(out[19]).toBe(-7);
      const shared = new Float32Array(new SharedArrayBuffer(15 * 4));
      readInto(x, shared);
      expect([...shared]).toEqual([...(x.dataSync() as Float32Array)]);
      expect(() => readInto(x, out, 6)).toThrow(/15 values do not fit at 6 in an array of 20/);
      const ints = tf.tensor1d([1, 2], 'int32');
      expect(() => readInto(ints, out)).toThrow(/expected a float32 tensor, got int32/);
      tf.dispose([x, ints]);
    }
    await withBackend('cpu');
    const onCpu = tf.tensor1d([1.5, -2, 3]);
    await withBackend('wasm'); // not on the wasm heap yet: moved there on the way
    const out = new Float32Array(3);
    readInto(onCpu, out);
    expect([...out]).toEqual([1.5, -2, 3]);
    onCpu.dispose();
  });
});

describe('Identity on wasm', () => {
  test('shares its input instead of copying it (tf.customGrad clones with it), with reference counts that free the data once', () => {
    gatherRows(tf.tidy(() => tf.ones([2, 2])), [0]).dispose(); // the copy kernels (and this Identity) register on first use
    const before = tf.memory().numTensors;
    const buffers = () => (tf.memory() as unknown as { numDataBuffers: number }).numDataBuffers;
    const x = tf.tensor2d([[1, 2], [3, 4]]);
    const dataBuffers = buffers();
    const y = tf.clone(x);
    expect(y.dataId).toBe(x.dataId);
    expect(buffers()).toBe(dataBuffers);
    x.dispose();
    expect([...(y.dataSync() as Float32Array)]).toEqual([1, 2, 3, 4]); // still alive through y
    y.dispose();
    expect(buffers()).toBe(dataBuffers - 1);
    expect(tf.memory().numTensors).toBe(before);
    setWasmKernels(false); // plain tfjs: its copying Identity
    try {
      const a = tf.tensor1d([5]);
      const b = tf.clone(a);
      expect(b.dataId).not.toBe(a.dataId);
      tf.dispose([a, b]);
    } finally {
      setWasmKernels(true);
    }
  });
});

describe('Transpose on wasm', () => {
  test('swapped last axes and swapped heads move every value where tfjs-wasm\'s kernel does; other permutations fall back', () => {
    useTransposeKernel();
    const cases: [number[], number[], boolean | null][] = [
      // shape, permutation, whether this package's kernel takes it
      [[4, 4], [1, 0], true],
      [[8, 12], [1, 0], true],
      [[512, 128], [1, 0], true], // an MLP weight of the tiny model
      [[5, 7], [1, 0], true], // edge rows and columns (not multiples of 4)
      [[128, 30], [1, 0], true], // an lm_head: edge columns only
      [[1, 9], [1, 0], true],
      [[9, 1], [1, 0], true],
      [[3, 6, 10], [0, 2, 1], true], // batched
      [[2, 3, 5, 6], [0, 1, 3, 2], true],
      [[2, 5, 3, 4], [0, 2, 1, 3], true], // [B, T, H, hd] -> [B, H, T, hd]
      [[2, 41, 4, 32], [0, 2, 1, 3], true],
      [[0, 4], [1, 0], null], // empty: nothing to move (whoever runs it)
      [[2, 3, 4], [1, 0, 2], false],
      [[2, 3, 4], [2, 1, 0], false],
    ];
    for (const [shape, perm, ours] of cases) {
      tf.tidy(() => {
        const x = tf.randomNormal(shape, 0, 1, 'float32', 7);
        const before = transposeKernelCalls();
        const mine = tf.transpose(x, perm);
        if (ours !== null) expect(transposeKernelCalls() - before, `[${shape}] perm [${perm}]`).toBe(ours ? 1 : 0);
        setWasmKernels(['matmul', 'tn', 'fused', 'fma', 'elementwise']); // all but copy: tfjs-wasm's Transpose
        try {
          const theirs = tf.transpose(x, perm);
          expect(mine.shape).toEqual(theirs.shape);
          expect([...(mine.dataSync() as Float32Array)]).toEqual([...(theirs.dataSync() as Float32Array)]);
          // its gradient is the inverse transpose, through the same kernels
          const g = (t: tf.Tensor) => tf.sum(tf.mul(tf.transpose(t, perm), tf.range(0, theirs.size).reshape(theirs.shape)));
          const gTheirs = tf.grad(g)(x).dataSync();
          setWasmKernels(true);
          expect([...tf.grad(g)(x).dataSync()]).toEqual([...gTheirs]);
        } finally {
          setWasmKernels(true);
        }
      });
    }
  });

  test('leaves no tensor behind', () => {
    useTransposeKernel();
    const x = tf.randomNormal([6, 10]);
    const y = tf.randomNormal([2, 5, 3, 4]);
    const before = tf.memory().numTensors;
    tf.transpose(x).dispose();
    tf.transpose(y, [0, 2, 1, 3]).dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, y]);
  });
});

describe('sums of squares (the gradient norm)', () => {
  test('four tensors of one size per pass: each sum has the bits of tf.sum(tf.square(x)), in the tensors\' order', () => {
    // sizes in groups of four with leftovers (301, 64, 1), and sizes that come once (97, 4)
    const sizes = [301, 64, 301, 301, 1, 64, 301, 301, 97, 64, 64, 64, 301, 301, 301, 1];
    let seed = 1;
    const xs = sizes.map((n, i) => {
      const values = tf.tidy(() => tf.randomNormal([n], 0, 10 ** ((i % 5) - 2), 'float32', seed++).dataSync() as Float32Array);
      if (i === 2) values[7] = 1e18; // one value that dwarfs the rest of its sum
      return tf.tensor1d(values);
    });
    xs.push(tf.tensor1d([3e19, 3e19, 1, 2])); // overflows to Infinity
    const before = tf.memory().numTensors;
    const sums = sumsOfSquares(xs);
    expect(tf.memory().numTensors).toBe(before);
    expect(sums).toHaveLength(xs.length);
    xs.forEach((x, i) => {
      const plain = tf.tidy(() => tf.sum(tf.square(x)).dataSync()[0]!);
      const single = tf.tidy(() => sumOfSquares(x).dataSync()[0]!);
      expect(Object.is(sums[i], plain), `tensor ${i} (${x.size} values): ${sums[i]} vs ${plain}`).toBe(true);
      expect(Object.is(sums[i], single)).toBe(true);
    });
    expect(sums[xs.length - 1]).toBe(Infinity);
    expect(() => sumsOfSquares([tf.tensor1d([1, 2], 'int32')])).toThrow(/float32/);
    tf.dispose(xs);
  });
});
