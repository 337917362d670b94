/**
 * Data movement on the tfjs wasm backend as block copies (WebAssembly's memory.copy) on the heap: row gathers,
 * concatenation and slicing along any axis. tfjs-wasm does these with per-element or per-row JavaScript loops
 * (a concat of the KV cache along its sequence axis is 1,000 typed-array copies for a batch of 128), and they
 * run once per layer per decoding step. Other backends (and other dtypes) use the tfjs ops. `concat` and `slice`
 * are differentiable; `gatherRows` is not (the embedding wraps it in its own gradient).
 */
import * as tf from '@tensorflow/tfjs';
import { heapOf, registerWasmKernel, replaceWasmKernel, wasmKernelsActive, WasmKernelModule, type WasmBackendLike, type WasmFunction, once, recording } from './runtime.ts';
import { Code, I32, V128 } from './wasm-asm.ts';

/** copyBlocks(src, dst, rows, srcStride, dstStride, bytes): `rows` copies of `bytes` bytes, strides in bytes. */
function copyBlocksCode(): Code {
  const f = new Code([I32, I32, I32, I32, I32, I32]);
  const [src, dst, rows, srcStride, dstStride, bytes] = [0, 1, 2, 3, 4, 5];
  f.while(() => f.get(rows), () => {
    f.get(dst).get(src).get(bytes).memoryCopy();
    f.inc(src, () => f.get(srcStride)).inc(dst, () => f.get(dstStride)).inc(rows, -1);
  });
  return f;
}

/** The byte lanes of i8x16.shuffle that pick float lanes `floats` (0-3 of the first vector, 4-7 of the second). */
const floatLanes = (floats: number[]) => floats.flatMap((f) => [4 * f, 4 * f + 1, 4 * f + 2, 4 * f + 3]);

/**
 * transposeTiles(src, dst, rows, cols, srcRow, dstRow): dst[c][r] = src[r][c] for r < rows, c < cols (both
 * multiples of 4), row strides in bytes; 4 x 4 tiles, each four vector loads, eight shuffles and four stores.
 */
function transposeTilesCode(): Code {
  const f = new Code([I32, I32, I32, I32, I32, I32]);
  const [src, dst, rows, cols, srcRow, dstRow] = [0, 1, 2, 3, 4, 5];
  const [p, q, c, s2, s3, d2, d3] = [f.local(I32), f.local(I32), f.local(I32), f.local(I32), f.local(I32), f.local(I32), f.local(I32)];
  const [a, b, e, g, t0, t1, t2, t3] = Array.from({ length: 8 }, () => f.local(V128));
  f.get(srcRow).i32(1).shl().set(s2).get(s2).get(srcRow).add().set(s3);
  f.get(dstRow).i32(1).shl().set(d2).get(d2).get(dstRow).add().set(d3);
  f.while(() => f.get(rows), () => {
    f.get(src).set(p).get(dst).set(q).get(cols).set(c);
    f.while(() => f.get(c), () => {
      // rows a, b, e, g of the tile -> its columns
      f.get(p).v128Load().set(a);
      f.get(p).get(srcRow).add().v128Load().set(b);
      f.get(p).get(s2).add().v128Load().set(e);
      f.get(p).get(s3).add().v128Load().set(g);
      f.get(a).get(b).i8x16Shuffle(floatLanes([0, 4, 1, 5])).set(t0); // a0 b0 a1 b1
      f.get(a).get(b).i8x16Shuffle(floatLanes([2, 6, 3, 7])).set(t1); // a2 b2 a3 b3
      f.get(e).get(g).i8x16Shuffle(floatLanes([0, 4, 1, 5])).set(t2); // e0 g0 e1 g1
      f.get(e).get(g).i8x16Shuffle(floatLanes([2, 6, 3, 7])).set(t3); // e2 g2 e3 g3
      f.get(q).get(t0).get(t2).i8x16Shuffle(floatLanes([0, 1, 4, 5])).v128Store(); // a0 b0 e0 g0
      f.get(q).get(dstRow).add().get(t0).get(t2).i8x16Shuffle(floatLanes([2, 3, 6, 7])).v128Store();
      f.get(q).get(d2).add().get(t1).get(t3).i8x16Shuffle(floatLanes([0, 1, 4, 5])).v128Store();
      f.get(q).get(d3).add().get(t1).get(t3).i8x16Shuffle(floatLanes([2, 3, 6, 7])).v128Store();
      f.inc(p, 16).inc(q, () => f.get(d2).i32(1).shl()).inc(c, -4);
    });
    f.inc(src, () => f.get(s2).i32(1).shl()).inc(dst, 16).inc(rows, -4);
  });
  return f;
}

const kernels = new WasmKernelModule(() => [
  { name: 'copyBlocks', code: copyBlocksCode() },
  { name: 'transposeTiles', code: transposeTilesCode() },
]);

/** copyBlocks on `be`, for callers that bypass the engine. */
export function copyKernelsFor(be: WasmBackendLike): Record<string, WasmFunction> {
  return kernels.exportsFor(be);
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

const register = once((): void => {
  // tfjs-wasm's Identity copies its input; this one shares it, as its Reshape does (and Identity on the cpu
  // backend): tf.customGrad clones every input and output of a hand-differentiated op with Identity, some 240
  // copies per micro-batch gradient of the tiny model. No kernel writes into its inputs, so sharing is safe.
  replaceWasmKernel('Identity', (copying) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (!wasmKernelsActive('copy') || x.dtype === 'string') return copying(args);
    (args.backend as unknown as WasmBackendLike).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
  registerWasmKernel('EmpoGatherRows', (inputs, be, attrs) => {
    const { x } = inputs as { x: tf.TensorInfo };
    const indices = attrs.indices as number[];
    const rowBytes = size(x.shape.slice(1)) * 4;
    const out = be.makeOutput([indices.length, ...x.shape.slice(1)], 'float32');
    const copy = kernels.exportsFor(be).copyBlocks!;
    const [src, dst] = [be.getMemoryOffset(x.dataId), be.getMemoryOffset(out.dataId)];
    for (let r = 0; r < indices.length; ) {
      let run = 1; // a run of consecutive source rows is one copy
      while (r + run < indices.length && indices[r + run] === indices[r]! + run) run++;
      copy(src + indices[r]! * rowBytes, dst + r * rowBytes, 1, 0, 0, run * rowBytes);
      r += run;
    }
    return out;
  });
  registerWasmKernel('EmpoConcat', (inputs, be, attrs) => {
    const axis = attrs.axis as number;
    const parts = Object.keys(inputs).sort((a, b) => Number(a) - Number(b)).map((k) => inputs[k]!);
    const shape = [...parts[0]!.shape];
    shape[axis] = parts.reduce((n, t) => n + t.shape[axis]!, 0);
    const out = be.makeOutput(shape, 'float32');
    const outer = size(shape.slice(0, axis));
    const outInner = size(shape.slice(axis)) * 4;
    const copy = kernels.exportsFor(be).copyBlocks!;
    let offset = 0;
    for (const t of parts) {
      const inner = size(t.shape.slice(axis)) * 4;
      if (inner > 0) copy(be.getMemoryOffset(t.dataId), be.getMemoryOffset(out.dataId) + offset, outer, inner, outInner, inner);
      offset += inner;
    }
    return out;
  });
  registerWasmKernel('EmpoSlice', (inputs, be, attrs) => {
    const { x } = inputs as { x: tf.TensorInfo };
    const { axis, begin, length } = attrs as { axis: number; begin: number; length: number };
    const shape = [...x.shape];
    const inner = size(shape.slice(axis + 1)) * 4;
    const srcRow = shape[axis]! * inner;
    shape[axis] = length;
    const out = be.makeOutput(shape, 'float32');
    if (length > 0) kernels.exportsFor(be).copyBlocks!(be.getMemoryOffset(x.dataId) + begin * inner, be.getMemoryOffset(out.dataId), size(shape.slice(0, axis)), srcRow, length * inner, length * inner);
    return out;
  });
});

/**
 * dst = src^T for `count` row-major rows x cols float32 matrices lying one after the other (byte offsets on the
 * heap): the 4 x 4 tiles in wasm, the edge rows and columns (rows or cols not a multiple of 4) in JavaScript.
 */
function transposeMatrices(be: WasmBackendLike, src: number, dst: number, count: number, rows: number, cols: number): void {
  const tiles = kernels.exportsFor(be).transposeTiles!;
  const [r4, c4] = [rows & ~3, cols & ~3];
  const heap = new Float32Array(heapOf(be)!.buffer);
  for (let m = 0; m < count; m++) {
    const [s, d] = [src + m * rows * cols * 4, dst + m * rows * cols * 4];
    if (r4 > 0 && c4 > 0) tiles(s, d, r4, c4, cols * 4, rows * 4);
    if (r4 === rows && c4 === cols) continue;
    const [S, D] = [s >> 2, d >> 2];
    for (let r = 0; r < rows; r++) for (let c = r < r4 ? c4 : 0; c < cols; c++) heap[D + c * rows + r] = heap[S + r * cols + c]!;
  }
}

/**
 * Replace tfjs-wasm's Transpose (once: call it with the wasm backend loaded) for the float32 permutations the
 * model makes: the last two axes swapped (Linear weights, 28 per forward of the tiny model, and the copies
 * decoding transposes once) as 4 x 4 SIMD tiles, and [A, B, C, D] -> [A, C, B, D] (attention heads) as block
 * copies of D values. tfjs-wasm's kernel computes every element's source index on its own: about 4x slower on
 * a [512, 128] weight. Other permutations and dtypes, and the copy group off, use tfjs-wasm's. The same values
 * either way (a transpose only moves them).
 */
export const useTransposeKernel = once((): void => {
  replaceWasmKernel('Transpose', (original) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const perm = (args.attrs as { perm: number[] }).perm;
    const n = x.shape.length;
    const lastTwo = n >= 2 && perm[n - 2] === n - 1 && perm[n - 1] === n - 2 && perm.slice(0, n - 2).every((p, i) => p === i);
    const heads = n === 4 && perm.join() === '0,2,1,3';
    if (!wasmKernelsActive('copy') || x.dtype !== 'float32' || !(lastTwo || heads)) return original(args);
    const be = args.backend as unknown as WasmBackendLike;
    const shape = perm.map((p) => x.shape[p]!);
    const out = be.makeOutput(shape, 'float32');
    if (size(shape) === 0) return out;
    const [src, dst] = [be.getMemoryOffset(x.dataId), be.getMemoryOffset(out.dataId)];
    transposeCalls++;
    if (lastTwo) {
      transposeMatrices(be, src, dst, size(x.shape.slice(0, n - 2)), x.shape[n - 2]!, x.shape[n - 1]!);
      return out;
    }
    const [A, B, C, D] = x.shape as [number, number, number, number];
    const copy = kernels.exportsFor(be).copyBlocks!;
    // out[a, c] (B rows of D values) = x[a, :, c] (rows C * D values apart)
    for (let a = 0; a < A; a++) for (let c = 0; c < C; c++) copy(src + (a * B * C + c) * D * 4, dst + (a * C + c) * B * D * 4, B, C * D * 4, D * 4, D * 4);
    return out;
  });
});

let transposeCalls = 0;

/** How many Transpose calls this package's kernel took so far (for tests). */
export function transposeKernelCalls(): number {
  return transposeCalls;
}

const useKernel = (...ts: tf.Tensor[]) => wasmKernelsActive('copy') && ts.every((t) => t.dtype === 'float32');

/** x[indices] along axis 0 (rows of any rank). Not differentiable. */
export function gatherRows<T extends tf.Tensor>(x: T, indices: ArrayLike<number>): T {
  const idx = Array.from(indices);
  for (const i of idx) if (!Number.isInteger(i) || i < 0 || i >= x.shape[0]!) throw new Error(`gatherRows: index ${i} out of range [0, ${x.shape[0]})`);
  if (!useKernel(x)) return tf.tidy(() => tf.gather(x, tf.tensor1d(idx, 'int32'))) as T;
  register();
  return tf.engine().runKernel('EmpoGatherRows', { x }, { indices: idx }) as T;
}

/** tf.concat(tensors, axis), differentiable (the gradient slices dy). */
export function concat<T extends tf.Tensor>(tensors: T[], axis: number): T {
  if (tensors.length === 1) return tensors[0]!;
  if (!useKernel(...tensors)) return tf.concat(tensors, axis) as T;
  register();
  const run = (ts: tf.Tensor[]) => tf.engine().runKernel('EmpoConcat', Object.fromEntries(ts.map((t, i) => [String(i), t])), { axis }) as tf.Tensor;
  if (!recording()) return run(tensors) as T; // no tape: no tf.customGrad (see recording)
  const f = tf.customGrad((...args: unknown[]) => {
    const ts = args.slice(0, tensors.length) as tf.Tensor[];
    const value = run(ts);
    return {
      value,
      gradFunc: (dy: tf.Tensor) => {
        let begin = 0;
        return ts.map((t) => {
          const g = slice(dy, axis, begin, t.shape[axis]!);
          begin += t.shape[axis]!;
          return g;
        });
      },
    };
  });
  return f(...tensors) as T;
}

/** x sliced to [begin, begin + length) along `axis`, differentiable (the gradient pads dy with zeros). */
export function slice<T extends tf.Tensor>(x: T, axis: number, begin: number, length: number): T {
  if (begin < 0 || length < 0 || begin + length > x.shape[axis]!) throw new Error(`slice: [${begin}, ${begin + length}) out of range of axis ${axis} of [${x.shape}]`);
  if (!useKernel(x)) {
    const b = x.shape.map((_, i) => (i === axis ? begin : 0));
    const s = x.shape.map((d, i) => (i === axis ? length : d));
    return tf.slice(x, b, s) as T;
  }
  register();
  const run = (t: tf.Tensor) => tf.engine().runKernel('EmpoSlice', { x: t }, { axis, begin, length }) as tf.Tensor;
  if (!recording()) return run(x) as T; // no tape: no tf.customGrad (see recording)
  const f = tf.customGrad((xIn) => ({
    value: run(xIn as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => tf.pad(dy, x.shape.map((d, i) => (i === axis ? [begin, d - begin - length] : [0, 0])) as [number, number][]),
  }));
  return f(x) as T;
}

/**
 * Copy a float32 tensor's values into `out` from element `offset` on, without allocating: on wasm straight
 * from the backend's heap (dataSync would first copy them into a new array: garbage that makes V8 collect more
 * often, which costs most when several worker threads share the cores); elsewhere through dataSync.
 */
export function readInto(x: tf.Tensor, out: Float32Array, offset = 0): void {
  if (x.dtype !== 'float32') throw new Error(`readInto: expected a float32 tensor, got ${x.dtype}`);
  if (offset < 0 || offset + x.size > out.length) throw new Error(`readInto: ${x.size} values do not fit at ${offset} in an array of ${out.length}`);
  if (tf.getBackend() === 'wasm') {
    // (a tensor still on another backend is moved onto the heap by the backend's data storage, as for any kernel)
    const be = tf.backend() as unknown as WasmBackendLike;
    const memory = heapOf(be);
    if (memory) {
      out.set(new Float32Array(memory.buffer, be.getMemoryOffset(x.dataId), x.size), offset);
      return;
    }
  }
  out.set(x.dataSync() as Float32Array, offset);
}
