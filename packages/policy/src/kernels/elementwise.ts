/**
 * Float32 Add and Multiply on the wasm backend as one SIMD loop each, replacing tfjs-wasm's kernels where one
 * operand is the other's shape or a suffix of it (a bias, a norm weight, a residual): tfjs-wasm spends about 8 us
 * of set-up per call on these (measured: 9.6 us for a [8, 128] + [128] add), and decoding makes ~40 such calls per
 * token step on small tensors. Each element is the same single float32 `a + b` or `a * b`, so the bits are those
 * of the kernels replaced (tested). Other shapes, dtypes and backends keep tfjs' kernels.
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

const kernels = new WasmKernelModule(() => [{ name: 'add', code: rowsCode('add') }, { name: 'mul', code: rowsCode('mul') }]);

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

/** Replace tfjs-wasm's Add and Multiply (once: call it with the wasm backend loaded, e.g. when it is active). */
export const useElementwiseKernels = once((): void => {
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
