/**
 * The AdamW step as one wasm kernel: a single pass over a parameter, its gradient and both moments, instead of
 * fourteen tfjs ops (fourteen passes and as many temporary tensors per parameter). Each lane does the same
 * float32 operations in the same order as the tensor formula
 *   g = grad * scale
 *   m' = m * beta1 + g * (1 - beta1)
 *   v' = v * beta2 + g^2 * (1 - beta2)
 *   p' = p * decay - ((m' / c1) / (sqrt(v' / c2) + eps)) * lr        (decay = 1 - lr * weight decay, or 1: p * 1 = p)
 * and every one of them is IEEE float32 in WebAssembly (no fused multiply-add here), so the result is the
 * formula's to the bit (tested).
 */
import * as tf from '@tensorflow/tfjs';
import { registerWasmKernel, WasmKernelModule, once } from './runtime.ts';
import { Code, F32, I32, V128, type ValType } from './wasm-asm.ts';

/** The float32 constants of one step (as tfjs makes scalars from JS numbers: Math.fround). */
export interface AdamWConstants {
  scale: number;
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  c1: number;
  c2: number;
  epsilon: number;
  lr: number;
  /** 1 - lr * weight decay, or 1 without weight decay (multiplying by 1 leaves p's bits as they are). */
  decay: number;
}

const CONSTANTS = ['scale', 'beta1', 'oneMinusBeta1', 'beta2', 'oneMinusBeta2', 'c1', 'c2', 'epsilon', 'lr', 'decay'] as const;

/** adamw(p, g, m, v, pOut, mOut, vOut, n, ...CONSTANTS): four lanes at a time, then one at a time. */
function adamwCode(): Code {
  const f = new Code([I32, I32, I32, I32, I32, I32, I32, I32, ...CONSTANTS.map((): ValType => F32)]);
  const [p, g, m, v, pOut, mOut, vOut, n] = [0, 1, 2, 3, 4, 5, 6, 7];
  const c = Object.fromEntries(CONSTANTS.map((name, i) => [name, 8 + i])) as Record<(typeof CONSTANTS)[number], number>;
  const splat = Object.fromEntries(CONSTANTS.map((name) => [name, f.local(V128)])) as Record<(typeof CONSTANTS)[number], number>;
  const [i, at] = [f.local(I32), f.local(I32)];
  const [gq, mq, vq] = [f.local(V128), f.local(V128), f.local(V128)];
  const [gs, ms, vs] = [f.local(F32), f.local(F32), f.local(F32)];
  for (const name of CONSTANTS) f.get(c[name]).f32x4Splat().set(splat[name]);
  const addr = (base: number) => f.get(base).get(at).add();
  /** The step on four lanes (vector) or one (scalar), reading and writing at byte offset `at`. */
  const step = (vector: boolean) => {
    const k = (name: (typeof CONSTANTS)[number]) => f.get(vector ? splat[name] : c[name]);
    const load = () => (vector ? f.v128Load() : f.f32Load());
    const store = () => (vector ? f.v128Store() : f.f32Store());
    const [mul, add, sub, div, sqrt] = vector
      ? [() => f.f32x4Mul(), () => f.f32x4Add(), () => f.f32x4Sub(), () => f.f32x4Div(), () => f.f32x4Sqrt()]
      : [() => f.f32Mul(), () => f.f32Add(), () => f.f32Sub(), () => f.f32Div(), () => f.f32Sqrt()];
    const [G, M, V] = vector ? [gq, mq, vq] : [gs, ms, vs];
    addr(g), load(), k('scale'), mul(), f.set(G);
    addr(m), load(), k('beta1'), mul(), f.get(G), k('oneMinusBeta1'), mul(), add(), f.set(M);
    addr(v), load(), k('beta2'), mul(), f.get(G), f.get(G), mul(), k('oneMinusBeta2'), mul(), add(), f.set(V);
    addr(mOut), f.get(M), store();
    addr(vOut), f.get(V), store();
    addr(pOut);
    addr(p), load(), k('decay'), mul();
    f.get(M), k('c1'), div(), f.get(V), k('c2'), div(), sqrt(), k('epsilon'), add(), div(), k('lr'), mul(), sub();
    store();
  };
  f.i32(0).set(i);
  f.while(() => f.get(i).i32(4).add().get(n).leU(), () => {
    f.get(i).i32(2).shl().set(at);
    step(true);
    f.inc(i, 4);
  });
  f.while(() => f.get(i).get(n).ltU(), () => {
    f.get(i).i32(2).shl().set(at);
    step(false);
    f.inc(i, 1);
  });
  return f;
}

/**
 * sumsq(x, n, out): out = ((0 + x_0 x_0) + x_1 x_1) + ... in float32, i in order: tf.sum(tf.square(x))'s
 * operations (tfjs-wasm squares each element, then sums them one after the other), in one pass and without the
 * squared copy.
 */
function sumOfSquaresCode(): Code {
  const f = new Code([I32, I32, I32]);
  const [x, n, out] = [0, 1, 2];
  const [at, end] = [f.local(I32), f.local(I32)];
  const [acc, value] = [f.local(F32), f.local(F32)];
  f.get(x).set(at);
  f.get(x).get(n).i32(2).shl().add().set(end);
  f.while(() => f.get(at).get(end).ltU(), () => {
    f.get(at).f32Load().set(value);
    f.get(acc).get(value).get(value).f32Mul().f32Add().set(acc);
    f.inc(at, 4);
  });
  f.get(out).get(acc).f32Store();
  return f;
}

/**
 * sumsq4(x0, x1, x2, x3, n, out): sumsq of four tensors of n elements each, out[j] for x_j, in one pass. Each sum is
 * its own chain of the same float32 operations in the same order as sumsq's, so each has sumsq's bits; the four
 * chains are independent, so the CPU runs them side by side instead of waiting on one add after another.
 */
function sumOfSquares4Code(): Code {
  const f = new Code([I32, I32, I32, I32, I32, I32]);
  const [n, out] = [4, 5];
  const [at, end] = [f.local(I32), f.local(I32)];
  const acc = [f.local(F32), f.local(F32), f.local(F32), f.local(F32)];
  const value = f.local(F32);
  f.get(n).i32(2).shl().set(end);
  f.while(() => f.get(at).get(end).ltU(), () => {
    for (let j = 0; j < 4; j++) {
      f.get(j).get(at).add().f32Load().set(value);
      f.get(acc[j]!).get(value).get(value).f32Mul().f32Add().set(acc[j]!);
    }
    f.inc(at, 4);
  });
  for (let j = 0; j < 4; j++) f.get(out).get(acc[j]!).f32Store(4 * j);
  return f;
}

const kernels = new WasmKernelModule(() => [
  { name: 'adamw', code: adamwCode() },
  { name: 'sumsq', code: sumOfSquaresCode() },
  { name: 'sumsq4', code: sumOfSquares4Code() },
]);

const register = once((): void => {
  registerWasmKernel('EmpoAdamW', (inputs, be, attrs) => {
    const { p, g, m, v } = inputs as Record<'p' | 'g' | 'm' | 'v', tf.TensorInfo>;
    const outs = [p, m, v].map((t) => be.makeOutput([...t.shape], 'float32'));
    const k = attrs as unknown as AdamWConstants;
    const offset = (t: tf.TensorInfo) => be.getMemoryOffset(t.dataId);
    kernels.exportsFor(be).adamw!(
      offset(p), offset(g), offset(m), offset(v), ...outs.map(offset), p.shape.reduce((a, b) => a * b, 1),
      ...CONSTANTS.map((name) => k[name]),
    );
    return outs;
  });
  registerWasmKernel('EmpoSumOfSquares', (inputs, be) => {
    const x = (inputs as { x: tf.TensorInfo }).x;
    const out = be.makeOutput([], 'float32');
    kernels.exportsFor(be).sumsq!(be.getMemoryOffset(x.dataId), x.shape.reduce((a, b) => a * b, 1), be.getMemoryOffset(out.dataId));
    return out;
  });
  registerWasmKernel('EmpoSumOfSquares4', (inputs, be) => {
    const xs = ['x0', 'x1', 'x2', 'x3'].map((k) => (inputs as Record<string, tf.TensorInfo>)[k]!);
    const out = be.makeOutput([4], 'float32');
    const n = xs[0]!.shape.reduce((a, b) => a * b, 1);
    kernels.exportsFor(be).sumsq4!(...xs.map((x) => be.getMemoryOffset(x.dataId)), n, be.getMemoryOffset(out.dataId));
    return out;
  });
});

/**
 * One AdamW step of parameter p (gradient g, moments m and v; float32 tensors of one shape) on the wasm backend:
 * returns the new [p, m, v]. The caller checks that the wasm kernels apply (wasmKernelsActive('fused')).
 */
export function adamwStep(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, k: AdamWConstants): [tf.Tensor, tf.Tensor, tf.Tensor] {
  for (const [name, t] of [['g', g], ['m', m], ['v', v]] as const) {
    if (t.shape.join(',') !== p.shape.join(',')) throw new Error(`adamwStep: ${name} has shape [${t.shape}], expected [${p.shape}]`);
  }
  if ([p, g, m, v].some((t) => t.dtype !== 'float32')) throw new Error('adamwStep: tensors must be float32');
  register();
  const attrs = Object.fromEntries(CONSTANTS.map((name) => [name, Math.fround(k[name])]));
  return tf.engine().runKernel('EmpoAdamW', { p, g, m, v }, attrs) as unknown as [tf.Tensor, tf.Tensor, tf.Tensor];
}

/**
 * The sum of the squares of a float32 tensor's elements as a float32 scalar tensor, on the wasm backend: the bits
 * of tf.sum(tf.square(x)) in one pass (the gradient norm for clipping). The caller checks that the wasm kernels
 * apply (wasmKernelsActive('fused')).
 */
export function sumOfSquares(x: tf.Tensor): tf.Scalar {
  if (x.dtype !== 'float32') throw new Error('sumOfSquares: the tensor must be float32');
  register();
  return tf.engine().runKernel('EmpoSumOfSquares', { x }, {}) as unknown as tf.Scalar;
}

/**
 * Each tensor's sum of squares, with sumOfSquares' bits (tf.sum(tf.square(x))'s), in the tensors' order: tensors
 * of one size go four at a time through one kernel pass that runs their four sums side by side (the gradient norm
 * of the tiny default, 50 tensors of four sizes: 13 passes). The caller checks that the wasm kernels apply
 * (wasmKernelsActive('fused')).
 */
export function sumsOfSquares(xs: readonly tf.Tensor[]): Float32Array {
  if (xs.some((x) => x.dtype !== 'float32')) throw new Error('sumsOfSquares: the tensors must be float32');
  register();
  const out = new Float32Array(xs.length);
  const bySize = new Map<number, number[]>();
  xs.forEach((x, i) => (bySize.get(x.size) ?? bySize.set(x.size, []).get(x.size)!).push(i));
  for (const indices of bySize.values()) {
    let at = 0;
    for (; at + 4 <= indices.length; at += 4) {
      const group = indices.slice(at, at + 4);
      const sums = tf.engine().runKernel('EmpoSumOfSquares4', Object.fromEntries(group.map((i, j) => [`x${j}`, xs[i]!])), {}) as unknown as tf.Tensor;
      const values = sums.dataSync();
      sums.dispose();
      group.forEach((i, j) => (out[i] = values[j]!));
    }
    for (const i of indices.slice(at)) {
      const sum = sumOfSquares(xs[i]!);
      out[i] = sum.dataSync()[0]!;
      sum.dispose();
    }
  }
  return out;
}
