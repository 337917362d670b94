/**
 * Plumbing for this package's WebAssembly kernels on the tfjs wasm backend: each kernel module imports the
 * backend's own memory (so kernels read their inputs and write their outputs in place, on the heap), is
 * compiled once per thread and instantiated once per backend memory; kernels are registered as tfjs kernels
 * and run through the engine (tidy, disposal and profiling work as for built-in kernels).
 */
import { setFlagsFromString } from 'node:v8';
import * as tf from '@tensorflow/tfjs';
import { encodeModule, type Code } from './wasm-asm.ts';

/** The few WebAssembly APIs used here (this project's TypeScript libs do not declare them). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
const WA = (globalThis as unknown as {
  WebAssembly: {
    Module: new (bytes: Uint8Array) => object;
    Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  };
}).WebAssembly;

/** What kernels use of tfjs-backend-wasm's BackendWasm. */
export interface WasmBackendLike {
  wasm: { asm?: { memory?: WasmMemory }; wasmMemory?: WasmMemory };
  makeOutput(shape: number[], dtype: 'float32' | 'int32'): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
  getMemoryOffset(dataId: tf.DataId): number;
  incRef(dataId: tf.DataId): void;
}

/** The backend's WebAssembly memory (its heap), or null where this build of tfjs-wasm does not expose it. */
export function heapOf(backend: WasmBackendLike): WasmMemory | null {
  return backend.wasm.asm?.memory ?? backend.wasm.wasmMemory ?? null;
}

export type WasmFunction = (...args: number[]) => void;

/**
 * A set of functions compiled into one module. `exportsFor(backend)` gives them bound to that backend's
 * memory (instantiated on first use).
 */
export class WasmKernelModule {
  private module: object | null = null;
  private readonly instances = new WeakMap<WasmMemory, Record<string, WasmFunction>>();

  constructor(private readonly build: () => { name: string; code: Code }[]) {}

  exportsFor(backend: WasmBackendLike): Record<string, WasmFunction> {
    const memory = heapOf(backend);
    if (!memory) throw new Error('wasm kernels: the wasm backend does not expose its memory');
    let fns = this.instances.get(memory);
    if (!fns) {
      this.module ??= new WA.Module(encodeModule(this.build()));
      fns = new WA.Instance(this.module, { env: { memory } }).exports as Record<string, WasmFunction>;
      this.instances.set(memory, fns);
    }
    return fns;
  }
}

/** A module with one function that returns f32x4.relaxed_madd of three zero vectors: compiles iff relaxed SIMD is on. */
const RELAXED_PROBE = (() => {
  const zero = [0xfd, 0x0c, ...new Array<number>(16).fill(0)]; // v128.const 0
  const body = [0x00, ...zero, ...zero, ...zero, 0xfd, 0x85, 0x02, 0x0b]; // no locals; relaxed_madd; end
  const code = [0x01, body.length, ...body];
  // magic, version; type section: one type () -> v128; function section: one function of type 0; code section
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, code.length, ...code]);
})();

let relaxedSimd: boolean | undefined;

/**
 * Whether this thread can compile relaxed SIMD (f32x4.relaxed_madd). Node 22 and later have it on; Node 20's
 * V8 has it behind --experimental-wasm-relaxed-simd, which is switched on here (a V8 flag that only decides
 * what WebAssembly validation accepts, safe to set at run time; Node refuses V8 flags in NODE_OPTIONS).
 */
export function relaxedSimdAvailable(): boolean {
  if (relaxedSimd !== undefined) return relaxedSimd;
  const compiles = () => {
    try {
      new WA.Module(RELAXED_PROBE);
      return true;
    } catch {
      return false;
    }
  };
  relaxedSimd = compiles();
  if (!relaxedSimd) {
    try {
      setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      // not Node, or the flag is gone: plain SIMD
    }
    relaxedSimd = compiles();
  }
  return relaxedSimd;
}

/**
 * Whether a gradient tape is recording (inside tf.grad / variableGrads). Without one, differentiable ops here
 * and in model.ts skip tf.customGrad: it costs an engine scope, a closure and an Identity kernel per input and
 * output on every call, and decoding makes about 65 such calls per token step.
 */
export const recording = (): boolean => tf.engine().state.gradientDepth > 0;

/** f run on the first call only (kernel registration: every op call asks for it, and it must stay cheap). */
export function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    f();
  };
}

const registered = new Set<string>();

/** Register `kernelFunc` as tfjs kernel `name` on the wasm backend (once). */
export function registerWasmKernel(
  name: string,
  kernelFunc: (inputs: tf.NamedTensorInfoMap, backend: WasmBackendLike, attrs: tf.NamedAttrMap) => tf.TensorInfo | tf.TensorInfo[],
): void {
  if (registered.has(name)) return;
  registered.add(name);
  tf.registerKernel({
    kernelName: name,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => kernelFunc(inputs, backend as unknown as WasmBackendLike, attrs ?? {}),
  });
}

/**
 * Replace tfjs-wasm's own kernel `name` (once): `make` gets the original kernel function (to fall back on) and
 * returns the new one. Unregistering first keeps tfjs from warning about a second registration.
 */
export function replaceWasmKernel(name: string, make: (original: tf.KernelFunc) => tf.KernelFunc): void {
  if (registered.has(name)) return;
  const original = tf.getKernel(name, 'wasm');
  if (!original) return; // the wasm backend is not loaded: nothing to replace
  registered.add(name);
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ ...original, kernelFunc: make(original.kernelFunc) });
}

/**
 * The kernel groups: matmul (a @ b and a @ b^T), tn (a^T @ b, weight gradients), copy (gathers, concat, slices),
 * fused (RMSNorm, RoPE), fma (the matmul kernels with fused multiply-adds, where relaxed SIMD compiles),
 * elementwise (Add and Multiply where one operand repeats along the other's leading axes, Sum over leading axes).
 */
export type KernelGroup = 'matmul' | 'tn' | 'copy' | 'fused' | 'fma' | 'elementwise';
const GROUPS: readonly KernelGroup[] = ['matmul', 'tn', 'copy', 'fused', 'fma', 'elementwise'];

/** EMPO_WASM_KERNELS's value as kernel groups: unset, '' or 1 = all, 0 = none, else a comma-separated list. */
export function parseKernelGroups(text: string | undefined): Set<KernelGroup> {
  if (text === undefined || text === '' || text === '1') return new Set(GROUPS);
  if (text === '0') return new Set();
  const names = text.split(',').map((g) => g.trim());
  const unknown = names.filter((g) => !(GROUPS as readonly string[]).includes(g));
  if (unknown.length) throw new Error(`EMPO_WASM_KERNELS: unknown kernel group '${unknown.join("', '")}' (allowed: 0, 1, or a list of ${GROUPS.join(', ')})`);
  return new Set(names as KernelGroup[]);
}

let enabled = parseKernelGroups(process.env.EMPO_WASM_KERNELS);

/**
 * Turn this package's wasm kernels off (plain tfjs ops, as before they existed), on, or on for some groups
 * only: for benchmarks and tests. The environment variable EMPO_WASM_KERNELS sets the start value: 0 (off), 1
 * (default: all), or a list such as matmul,copy.
 */
export function setWasmKernels(on: boolean | readonly KernelGroup[]): void {
  enabled = new Set(on === true ? GROUPS : on === false ? [] : on);
}

/** Whether the kernels of `group` apply now: enabled, and the active backend is wasm. */
export function wasmKernelsActive(group: KernelGroup): boolean {
  return enabled.has(group) && tf.getBackend() === 'wasm';
}
