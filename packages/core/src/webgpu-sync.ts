/**
 * Synchronous GPU -> CPU reads (`dataSync`, `arraySync`) for TensorFlow.js's WebGPU backend in Node.
 *
 * The backend's own readSync copies through an OffscreenCanvas, which Node does not have, and WebGPU maps
 * buffers only asynchronously. Dawn for Node (dawn.node) completes a mapping when it processes events, which it
 * schedules through the global `setImmediate` with a native callback. We record that callback and call it in a
 * loop until the staging buffer is mapped, so a read finishes without returning to the event loop. The code
 * using the model (sampling, log-probs, the trainer) stays synchronous and backend-neutral.
 */

type Immediate = typeof setImmediate;

const state: {
  real?: Immediate;
  /** Dawn's latest process-events callback. */
  tick?: () => void;
  /** While pumping: Dawn's reschedule request, handed to the real setImmediate afterwards. */
  deferring: boolean;
  deferred?: () => void;
} = { deferring: false };

const isNative = (f: unknown): f is () => void => typeof f === 'function' && Function.prototype.toString.call(f).includes('[native code]');

/** Record Dawn's event-processing callback as it schedules it; call before Dawn is first used. Idempotent. */
export function hookDawnScheduler(): void {
  if (state.real) return;
  const real = globalThis.setImmediate;
  state.real = real;
  const hooked = function (this: unknown, fn: unknown, ...args: unknown[]) {
    if (isNative(fn) && args.length === 0) {
      state.tick = fn;
      if (state.deferring) {
        state.deferred = fn;
        return undefined;
      }
    }
    return (real as (...a: unknown[]) => unknown)(fn, ...args);
  };
  // Keep setImmediate's own properties (its util.promisify.custom version among them).
  for (const key of Reflect.ownKeys(real)) {
    if (!(key in hooked)) Object.defineProperty(hooked, key, Object.getOwnPropertyDescriptor(real, key)!);
  }
  globalThis.setImmediate = hooked as unknown as Immediate;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

interface MappableBuffer {
  mapAsync(mode: number): Promise<void>;
  readonly mapState: string;
}

/** Map `buffer` for reading and wait for it without yielding to the event loop. */
export function mapReadSync(buffer: MappableBuffer, mapModeRead: number, timeoutMs = 600_000): void {
  const pending = buffer.mapAsync(mapModeRead);
  pending.catch(() => {}); // a failure shows as mapState 'unmapped' below
  if (!state.tick) throw new Error('webgpu: cannot read synchronously: Dawn\'s event callback was not seen (hookDawnScheduler must run before Dawn loads)');
  state.deferring = true;
  state.deferred = undefined;
  const deadline = Date.now() + timeoutMs;
  let spins = 0;
  try {
    for (;;) {
      const s = buffer.mapState;
      if (s === 'mapped') return;
      if (s === 'unmapped') throw new Error('webgpu: mapping a buffer for reading failed (device lost or out of memory?)');
      state.tick();
      if (buffer.mapState === 'mapped') return;
      spins++;
      // Spin briefly, then sleep in small steps: on a software adapter the "GPU" needs the CPU we would burn.
      if (spins > 20) Atomics.wait(sleeper, 0, 0, spins > 2000 ? 1 : 0.05);
      if (spins % 256 === 0 && Date.now() > deadline) throw new Error(`webgpu: a read did not finish within ${timeoutMs / 1000}s`);
    }
  } finally {
    state.deferring = false;
    if (state.deferred) state.real!(state.deferred);
    state.deferred = undefined;
  }
}

interface TensorData { values?: unknown; dtype: string; resource?: unknown }
interface BackendInternals {
  tensorMap: { get(dataId: object): TensorData };
  bufferManager: { acquireBuffer(size: number, usage: number): GpuBufferLike; releaseBuffer(b: GpuBufferLike): void };
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  commandEncoder: { copyBufferToBuffer(src: unknown, so: number, dst: unknown, doff: number, size: number): void };
  convertAndCacheOnCPU(dataId: object, values: unknown): unknown;
}
interface GpuBufferLike extends MappableBuffer {
  size: number;
  getMappedRange(): ArrayBuffer;
  unmap(): void;
}

/**
 * Replace WebGPUBackend.prototype.readSync with a staging-buffer copy and a synchronous map (the same steps as
 * the backend's async read). Complex and string tensors keep the original path (they read through this one).
 */
export function patchReadSync(
  backendClass: { prototype: object },
  convert: (data: ArrayBuffer, dtype: string) => unknown,
): void {
  const proto = backendClass.prototype as { readSync: (dataId: object) => unknown; __empoSyncRead?: boolean };
  if (proto.__empoSyncRead) return;
  const original = proto.readSync;
  const g = globalThis as unknown as { GPUBufferUsage: { COPY_DST: number; MAP_READ: number }; GPUMapMode: { READ: number } };
  proto.readSync = function (this: BackendInternals, dataId: object) {
    const data = this.tensorMap.get(dataId);
    if (data.values != null || data.dtype === 'string' || data.dtype === 'complex64') return original.call(this, dataId);
    const source = data.resource as { size: number };
    const staging = this.bufferManager.acquireBuffer(source.size, g.GPUBufferUsage.COPY_DST | g.GPUBufferUsage.MAP_READ);
    this.ensureCommandEncoderReady();
    this.endComputePassEncoder();
    this.commandEncoder.copyBufferToBuffer(source, 0, staging, 0, source.size);
    this.submitQueue();
    mapReadSync(staging, g.GPUMapMode.READ);
    const bytes = staging.getMappedRange().slice(0);
    staging.unmap();
    this.bufferManager.releaseBuffer(staging);
    const values = convert(bytes, data.dtype);
    this.convertAndCacheOnCPU(dataId, values);
    return values;
  };
  proto.__empoSyncRead = true;
}
