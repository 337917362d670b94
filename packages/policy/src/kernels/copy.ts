/**
 * Data movement on the tfjs wasm backend as block copies (WebAssembly's memory.copy) on the heap: row gathers,
 * concatenation and slicing along any axis. tfjs-wasm does these with per-element or per-row JavaScript loops
 * (a concat of the KV cache along its sequence axis is 1,000 typed-array copies for a batch of 128), and they
 * run once per layer per decoding step. Other backends (and other dtypes) use the tfjs ops. `concat` and `slice`
 * are differentiable; `gatherRows` is not (the embedding wraps it in its own gradient).
 */
import * as tf from '@tensorflow/tfjs';
import { heapOf, registerWasmKernel, replaceWasmKernel, wasmKernelsActive, WasmKernelModule, type WasmBackendLike, type WasmFunction, once, recording } from './runtime.ts';
import { Code, I32 } from './wasm-asm.ts';

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

const kernels = new WasmKernelModule(() => [{ name: 'copyBlocks', code: copyBlocksCode() }]);

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
