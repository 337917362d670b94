/**
 * Time every tfjs kernel called at the top level of the engine (a kernel's nested calls count in its own time)
 * while `run` is called `repeats` times: the helper behind bench/update-profile.ts and bench/decode-profile.ts.
 */
import * as tf from '@tensorflow/tfjs';

export interface KernelProfile {
  /** Wall time of one call of `run`. */
  msPerRun: number;
  /**
   * Per kernel, per call of `run`: time and calls, slowest first. With `byShape`, the matmul kernels are split by
   * their inputs' shapes (`kernel` reads e.g. `EmpoBatchMatMulTN [1312,512] x [1312,128]`) and give their speed.
   */
  kernels: { kernel: string; ms: number; calls: number; gflops?: number }[];
  /** The kernels' time together, per call of `run`. */
  msInKernels: number;
}

/**
 * Multiply-adds x 2 of a matmul kernel call: C = A B (or A^T B for names ending TN, A B^T for NT) over the
 * leading batch axes; null for kernels that are not matmuls.
 */
function matmulFlops(kernel: string, a: readonly number[], b: readonly number[]): number | null {
  if (!/MatMul/.test(kernel) || a.length < 2 || b.length < 2) return null;
  const batch = a.slice(0, -2).reduce((n, d) => n * d, 1);
  const [a0, a1] = [a[a.length - 2]!, a[a.length - 1]!];
  const [b0, b1] = [b[b.length - 2]!, b[b.length - 1]!];
  if (kernel.endsWith('TN')) return 2 * batch * a1 * a0 * b1; // A [K, M], B [K, N]
  if (kernel.endsWith('NT')) return 2 * batch * a0 * a1 * b0; // A [M, K], B [N, K]
  return 2 * batch * a0 * a1 * b1; // A [M, K], B [K, N]
}

export function profileKernels(run: () => void, repeats: number, byShape = false): KernelProfile {
  const byKernel = new Map<string, { ms: number; calls: number; flops: number }>();
  const engine = tf.engine() as unknown as { runKernel: (name: string, inputs: unknown, attrs: unknown) => unknown };
  const runKernel = engine.runKernel.bind(engine);
  let depth = 0;
  engine.runKernel = (name, inputs, attrs) => {
    depth++;
    const t = performance.now();
    try {
      return runKernel(name, inputs, attrs);
    } finally {
      depth--;
      if (depth === 0) {
        const { a, b } = inputs as { a?: { shape: number[] }; b?: { shape: number[] } };
        const flops = byShape && a && b ? matmulFlops(name, a.shape, b.shape) : null;
        const key = flops === null ? name : `${name} [${a!.shape.join(',')}] x [${b!.shape.join(',')}]`;
        const k = byKernel.get(key) ?? { ms: 0, calls: 0, flops: 0 };
        k.ms += performance.now() - t;
        k.calls++;
        k.flops += flops ?? 0;
        byKernel.set(key, k);
      }
    }
  };
  const t0 = performance.now();
  try {
    for (let i = 0; i < repeats; i++) run();
  } finally {
    engine.runKernel = runKernel;
  }
  const msPerRun = (performance.now() - t0) / repeats;
  const kernels = [...byKernel]
    .map(([kernel, k]) => ({ kernel, ms: k.ms / repeats, calls: k.calls / repeats, ...(k.flops > 0 && { gflops: k.flops / k.ms / 1e6 }) }))
    .sort((a, b) => b.ms - a.ms);
  return { msPerRun, kernels, msInKernels: kernels.reduce((s, k) => s + k.ms, 0) };
}
