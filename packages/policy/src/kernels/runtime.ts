/**
 * Plumbing for this package's WebAssembly kernels on the tfjs wasm backend: each kernel module imports the
 * backend's own memory (so kernels read their inputs and write their outputs in place, on the heap), is
 * compiled once per thread and instantiated once per backend memory; kernels are registered as tfjs kernels
 * and run through the engine (tidy, disposal and profiling work as for built-in kernels).
 */
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
  getMemoryOffset(dataId: tf.DataId): number;
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
    const memory = backend.wasm.asm?.memory ?? backend.wasm.wasmMemory;
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

const registered = new Set<string>();

/** Register `kernelFunc` as tfjs kernel `name` on the wasm backend (once). */
export function registerWasmKernel(name: string, kernelFunc: (inputs: tf.NamedTensorInfoMap, backend: WasmBackendLike, attrs: tf.NamedAttrMap) => tf.TensorInfo): void {
  if (registered.has(name)) return;
  registered.add(name);
  tf.registerKernel({
    kernelName: name,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => kernelFunc(inputs, backend as unknown as WasmBackendLike, attrs ?? {}),
  });
}

/** The kernel groups: matmul (a @ b and a @ b^T), tn (a^T @ b, weight gradients), copy (gathers, concat, slices), fused (RMSNorm, RoPE). */
export type KernelGroup = 'matmul' | 'tn' | 'copy' | 'fused';
const GROUPS: readonly KernelGroup[] = ['matmul', 'tn', 'copy', 'fused'];

function parseGroups(text: string | undefined): Set<KernelGroup> {
  if (text === undefined || text === '' || text === '1') return new Set(GROUPS);
  if (text === '0') return new Set();
  return new Set(text.split(',').map((g) => g.trim()).filter((g): g is KernelGroup => (GROUPS as readonly string[]).includes(g)));
}

let enabled = parseGroups(process.env.EMPO_WASM_KERNELS);

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
