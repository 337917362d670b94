/**
 * Float32 Add and Multiply on the wasm backend as one SIMD loop each, replacing tfjs-wasm's kernels where one
 * operand is the other's shape or a suffix of it (a bias, a norm weight, a residual): tfjs-wasm spends about 8 us
 * of set-up per call on these (measured: 9.6 us for a [8, 128] + [128] add), and decoding makes ~40 such calls per
 * token step on small tensors. Each element is the same single float32 `a + b` or `a * b`, so the bits are those
 * of the kernels replaced (tested). Other shapes, dtypes and backends keep tfjs' kernels.
 *
 * Also float32 Sum over leading axes (the gradients of biases and norm weights: [rows, D] -> [D]): tfjs-wasm
 * transposes the input and then sums each column in order; here the rows are added in order onto the output, one
 * vector of columns at a time, so each column is the same float32 sum in the same order without the transpose.
 */
import * as tf from '@tensorflow/tfjs';
import { once, replaceWasmKernel, wasmKernelsActive, WasmKernelModule, type WasmBackendLike, type WasmFunction } from './runtime.ts';
import { Code, I32 } from './wasm-asm.ts';

/** rows(a, b, out, rows, m): out[r m + j] = a[r m + j] (op) b[j] for r < rows, j < m (b repeats every m). */
function rowsCode(op: 'add' | 'mul'): Code {
  const f = new Code([I32, I32, I32, I32, I32]);
  const [a, b, out, rows, m] = [0, 1, 2, 3, 4];
  const [j, m4, end] = [f.local(I32), f.local(I32), f.local(I32)];
  f.get(m).i32(2).shl().set(m4); // bytes per row
  f.get(m4).i32(-16).and().set(end); // bytes covered by whole vectors
  /** out[j] = a[j] (op) b[j] for j (in bytes) up to `limit`, a vector (16 bytes) or a float (4) at a time. */
  const loop = (limit: number, bytes: 16 | 4) =>
    f.while(() => f.get(j).get(limit).ltU(), () => {
      const load = () => (bytes === 16 ? f.v128Load() : f.f32Load());
      f.get(out).get(j).add();
      f.get(a).get(j).add();
      load();
      f.get(b).get(j).add();
      load();
      if (op === 'add') (bytes === 16 ? f.f32x4Add() : f.f32Add());
      else (bytes === 16 ? f.f32x4Mul() : f.f32Mul());
      (bytes === 16 ? f.v128Store() : f.f32Store()).inc(j, bytes);
    });
  f.while(() => f.get(rows), () => {
    f.i32(0).set(j);
    loop(end, 16);
    loop(m4, 4);
    f.inc(a, () => f.get(m4)).inc(out, () => f.get(m4)).inc(rows, -1);
  });
  return f;
}

/**
 * columnSum(x, out, rows, m): out[j] = ((0 + x[0, j]) + x[1, j]) + ... + x[rows-1, j] for j < m, float32, rows in
 * order (x row-major [rows, m]): the order of tfjs-wasm's Sum over a transposed input.
 */
function columnSumCode(): Code {
  const f = new Code([I32, I32, I32, I32]);
  const [x, out, rows, m] = [0, 1, 2, 3];
  const [j, m4, end] = [f.local(I32), f.local(I32), f.local(I32)];
  f.get(m).i32(2).shl().set(m4);
  f.get(m4).i32(-16).and().set(end);
  /** One row: out[j] += x[j] (the first row: out[j] = 0 + x[j]), whole vectors, then the tail a float at a time. */
  const pass = (first: boolean) => {
    f.i32(0).set(j);
    for (const [limit, bytes] of [[end, 16], [m4, 4]] as const) {
      f.while(() => f.get(j).get(limit).ltU(), () => {
        f.get(out).get(j).add();
        if (first) (bytes === 16 ? f.v128Zero() : f.f32Zero());
        else (f.get(out).get(j).add(), bytes === 16 ? f.v128Load() : f.f32Load());
        f.get(x).get(j).add();
        if (bytes === 16) f.v128Load().f32x4Add().v128Store();
        else f.f32Load().f32Add().f32Store();
        f.inc(j, bytes);
      });
    }
    f.inc(x, () => f.get(m4)).inc(rows, -1);
  };
  pass(true);
  f.while(() => f.get(rows), () => pass(false));
  return f;
}

const kernels = new WasmKernelModule(() => [
  { name: 'add', code: rowsCode('add') },
  { name: 'mul', code: rowsCode('mul') },
  { name: 'columnSum', code: columnSumCode() },
]);

/** The Add / Multiply loops on `be` (add, mul), for callers that bypass the engine. */
export function elementwiseKernelsFor(be: WasmBackendLike): Record<string, WasmFunction> {
  return kernels.exportsFor(be);
}

const size = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);

/**
 * The operands as (full, repeated): `full` has the output's shape and `repeated` equals its trailing dims (leading
 * 1s dropped), or null when the broadcast is another kind (then tfjs' kernel runs). A repeated operand of one
 * value also goes to tfjs' kernel: the loop would take it one float per row, about 10x slower than tfjs-wasm's
 * own scalar loop on a [1312, 512] tensor (0.81 against 0.15 ms; the training backward's `1 + x` in SiLU's gradient).
 */
function rowsLayout(a: tf.TensorInfo, b: tf.TensorInfo): { full: tf.TensorInfo; repeated: tf.TensorInfo; shape: number[] } | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  const [full, repeated] = size(a.shape) >= size(b.shape) ? [a, b] : [b, a];
  if (size(full.shape) !== size(shape) || size(shape) === 0 || size(repeated.shape) === 1) return null;
  const first = repeated.shape.findIndex((d) => d !== 1);
  const tail = first === -1 ? [] : repeated.shape.slice(first);
  const ok = tail.length <= shape.length && tail.every((d, i) => d === shape[shape.length - tail.length + i]);
  return ok ? { full, repeated, shape } : null;
}

let loopCalls = 0;

/** How many Add / Multiply calls took the SIMD loop so far (for tests and benchmarks). */
export function elementwiseLoopCalls(): number {
  return loopCalls;
}

/** Replace tfjs-wasm's Add, Multiply and Sum (once: call it with the wasm backend loaded, e.g. when it is active). */
export const useElementwiseKernels = once((): void => {
  useColumnSumKernel();
  for (const [name, fn] of [['Add', 'add'], ['Multiply', 'mul']] as const) {
    replaceWasmKernel(name, (original) => (args) => {
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const layout = wasmKernelsActive('elementwise') ? rowsLayout(a, b) : null;
      if (!layout) return original(args);
      const be = args.backend as unknown as WasmBackendLike;
      const out = be.makeOutput(layout.shape, 'float32');
      const m = size(layout.repeated.shape);
      loopCalls++;
      kernels.exportsFor(be)[fn]!(be.getMemoryOffset(layout.full.dataId), be.getMemoryOffset(layout.repeated.dataId), be.getMemoryOffset(out.dataId), size(layout.shape) / m, m);
      return out;
    });
  }
});

/**
 * Sum over leading axes, given in increasing order, as (rows, m, output shape), or null for other reductions,
 * dtypes or empty inputs (then tfjs' kernel runs). A sum over every axis stays with tfjs (its single running sum
 * is the same loop).
 */
function leadingSum(x: tf.TensorInfo, axis: number | number[], keepDims: boolean): { rows: number; m: number; shape: number[] } | null {
  const rank = x.shape.length;
  if (x.dtype !== 'float32' || size(x.shape) === 0) return null;
  // in the order given: tfjs-wasm sums the reduced axes in that order (axes [1, 0] run axis 1 outermost)
  const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a));
  const k = axes.length;
  if (k === 0 || k >= rank || axes.some((a, i) => a !== i)) return null;
  const shape = keepDims ? x.shape.map((d, i) => (i < k ? 1 : d)) : x.shape.slice(k);
  return { rows: size(x.shape.slice(0, k)), m: size(x.shape.slice(k)), shape };
}

let sumCalls = 0;

/** How many Sum calls took the column loop so far (for tests). */
export function columnSumCalls(): number {
  return sumCalls;
}

/** Replace tfjs-wasm's Sum for sums over leading axes (useElementwiseKernels does). */
const useColumnSumKernel = (): void => {
  replaceWasmKernel('Sum', (original) => (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const layout = wasmKernelsActive('elementwise') ? leadingSum(x, axis, keepDims) : null;
    if (!layout) return original(args);
    const be = args.backend as unknown as WasmBackendLike;
    const out = be.makeOutput(layout.shape, 'float32');
    sumCalls++;
    kernels.exportsFor(be).columnSum!(be.getMemoryOffset(x.dataId), be.getMemoryOffset(out.dataId), layout.rows, layout.m);
    return out;
  });
};
