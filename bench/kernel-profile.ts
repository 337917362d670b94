/**
 * Time every tfjs kernel called at the top level of the engine (a kernel's nested calls count in its own time)
 * while `run` is called `repeats` times: the helper behind bench/update-profile.ts and bench/decode-profile.ts.
 */
import * as tf from '@tensorflow/tfjs';

export interface KernelProfile {
  /** Wall time of one call of `run`. */
  msPerRun: number;
  /** Per kernel, per call of `run`: time and calls, slowest first. */
  kernels: { kernel: string; ms: number; calls: number }[];
  /** The kernels' time together, per call of `run`. */
  msInKernels: number;
}

export function profileKernels(run: () => void, repeats: number): KernelProfile {
  const byKernel = new Map<string, { ms: number; calls: number }>();
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
        const k = byKernel.get(name) ?? { ms: 0, calls: 0 };
        k.ms += performance.now() - t;
        k.calls++;
        byKernel.set(name, k);
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
  const kernels = [...byKernel].map(([kernel, k]) => ({ kernel, ms: k.ms / repeats, calls: k.calls / repeats })).sort((a, b) => b.ms - a.ms);
  return { msPerRun, kernels, msInKernels: kernels.reduce((s, k) => s + k.ms, 0) };
}
