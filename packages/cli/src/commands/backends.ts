/**
 * `empo backends`: which tensor backends this machine can run, the WebGPU adapters Dawn finds (or why it finds
 * none), and what `--backend auto` would pick. With --check, computes a small matmul and gradient on each
 * usable backend and compares it with the cpu backend.
 */
import {
  EmpoError, describeAdapter, findTfjsNode, gpuProblems, probeAdapter, selectBackend, vulkanIcdFiles,
  type AdapterProbe, type BackendName,
} from '@empo/core';
import { parse } from '../args.ts';
import type { Command } from './types.ts';

const help = `Usage: empo backends [--check] [--json]

Lists the tensor backends (wasm, cpu, tensorflow, webgpu), the WebGPU adapters Dawn finds and why it
finds none, and what --backend auto would choose (tensorflow if installed, then a real GPU adapter,
then wasm). See docs/GPU.md for NVIDIA GPUs and tfjs-node-gpu.

  --check            also run a 128x128 matmul and its gradient on every usable backend and compare
                     them with the cpu backend (max abs difference, milliseconds)
  --json             print the findings as JSON
  -h, --help         this help
`;

interface Check { backend: string; ok: boolean; maxAbsDiff?: number; ms?: number; error?: string }

function adapterText(p: AdapterProbe): string {
  return p.ok ? describeAdapter(p.summary) : `none: ${p.reason}`;
}

/** A small computation whose result is compared across backends (values and a gradient). */
async function compute(): Promise<{ values: Float32Array; ms: number }> {
  const tf = await import('@tensorflow/tfjs');
  const n = 128;
  const a = tf.tensor2d(Float32Array.from({ length: n * n }, (_, i) => Math.sin(i * 0.37)), [n, n]);
  const b = tf.tensor2d(Float32Array.from({ length: n * n }, (_, i) => Math.cos(i * 0.11)), [n, n]);
  const start = performance.now();
  const out = tf.tidy(() => {
    const f = (x: import('@tensorflow/tfjs').Tensor) => tf.sum(tf.logSoftmax(tf.matMul(x, b)).mul(0.01)) as import('@tensorflow/tfjs').Scalar;
    const g = tf.grad(f)(a);
    return tf.concat([tf.matMul(a, b).flatten(), g.flatten()]);
  });
  const values = out.dataSync() as Float32Array;
  const ms = performance.now() - start;
  tf.dispose([a, b, out]);
  return { values, ms };
}

export const backends: Command = {
  summary: 'list the tensor backends and WebGPU adapters this machine has, and what --backend auto picks',
  async run(argv) {
    const { values } = parse('backends', argv, { check: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
    if (values.help) return void process.stdout.write(help);
    const node = await findTfjsNode();
    const gpu = await probeAdapter('gpu');
    const software = await probeAdapter('software');
    const auto = 'name' in node ? 'tensorflow' : gpu.ok ? 'webgpu' : 'wasm';
    const report = {
      wasm: 'available (the CPU default: SIMD, one thread)',
      cpu: 'available (pure JS, about 25x slower than wasm)',
      tensorflow: 'name' in node ? `available (${node.name})` : `unavailable: ${node.error} (optional; see docs/GPU.md)`,
      webgpu: {
        gpu: gpu.ok ? gpu.summary : { none: gpu.reason },
        software: software.ok ? software.summary : { none: software.reason },
        vulkan_icds: vulkanIcdFiles(),
        problems: gpuProblems(),
      },
      auto,
      checks: [] as Check[],
    };
    if (values.check) {
      const names: BackendName[] = ['cpu', 'wasm', ...('name' in node ? ['tensorflow' as const] : []), ...(gpu.ok || software.ok ? ['webgpu' as const] : [])];
      let reference: Float32Array | undefined;
      for (const name of names) {
        try {
          const chosen = await selectBackend(name, true);
          await compute(); // warm-up: kernels and shaders compile on first use
          const { values: v, ms } = await compute();
          reference ??= v;
          let diff = 0;
          for (let i = 0; i < v.length; i++) diff = Math.max(diff, Math.abs(v[i]! - reference[i]!));
          report.checks.push({ backend: chosen, ok: Number.isFinite(diff) && diff < 1e-2, maxAbsDiff: diff, ms });
        } catch (error) {
          report.checks.push({ backend: name, ok: false, error: (error as Error).message });
        }
      }
    }
    if (values.json) {
      process.stdout.write(JSON.stringify(report) + '\n');
    } else {
      const lines = [
        `wasm        ${report.wasm}`,
        `cpu         ${report.cpu}`,
        `tensorflow  ${report.tensorflow}`,
        `webgpu      GPU adapter: ${adapterText(gpu)}`,
        `            software adapter: ${adapterText(software)}`,
        ...(report.webgpu.vulkan_icds.length ? [`            Vulkan drivers (ICD files): ${report.webgpu.vulkan_icds.join(', ')}`] : []),
        `auto        would choose ${auto}`,
        ...report.checks.map((c) => `check       ${c.backend.padEnd(10)} ${c.ok ? 'ok' : 'FAILED'}${c.maxAbsDiff !== undefined ? `  max |diff| vs cpu ${c.maxAbsDiff.toExponential(1)}  ${c.ms!.toFixed(1)} ms` : ''}${c.error ? `  ${c.error}` : ''}`),
      ];
      process.stdout.write(lines.join('\n') + '\n');
    }
    const failed = report.checks.filter((c) => !c.ok).map((c) => c.backend);
    if (failed.length) throw new EmpoError(`--check failed on ${failed.join(', ')}`);
  },
};
