/** A PolicyWorkers task module for bench/decode-pair.ts: `generate` on the worker's weights, timed inside the worker. */
import { generate, type GenerateOptions, type TaskModule, type WorkerModel } from '@empo/policy';

function timedGenerate(model: WorkerModel, { prompts, options }: { prompts: number[][]; options: GenerateOptions }): number {
  const start = performance.now();
  generate(model, prompts, options);
  return performance.now() - start;
}

export const tasks: TaskModule['tasks'] = { 'bench.timedGenerate': timedGenerate as TaskModule['tasks'][string] };
