import { backends } from './backends.ts';
import { benchmarks } from './benchmarks.ts';
import { cacheKey } from './cache-key.ts';
import { config } from './config.ts';
import { genData } from './gen-data.ts';
import { entropy, grade } from './grade.ts';
import { mainJob } from './main-job.ts';
import { generate, logprobs } from './model.ts';
import { report } from './report.ts';
import { results } from './results.ts';
import { serve } from './serve.ts';
import { sft } from './sft.ts';
import { cluster, evaluate, sample, step, train, trainStep } from './stages.ts';
import type { Command } from './types.ts';

export const commands: Record<string, Command> = {
  main: mainJob,
  sample,
  cluster,
  'train-step': trainStep,
  step,
  train,
  eval: evaluate,
  report,
  benchmarks,
  backends,
  serve,
  generate,
  logprobs,
  results,
  sft,
  grade,
  entropy,
  'gen-data': genData,
  config,
  'cache-key': cacheKey,
};
