import { join } from 'node:path';
import { Rng, labeledQueriesSpec, queriesSpec, sftSpec, writeJsonAtomic, writeParquet } from '@empo/core';
import { allProblems, noisySolution, sampleProblems, splitOf } from './arithmetic.ts';

export interface ArithTaskOptions {
  /** Unlabeled training questions. */
  trainCount: number;
  /** Labeled evaluation questions (a disjoint split). */
  evalCount: number;
  /** Pretraining pairs (train-split questions with noisy step-by-step solutions). */
  sftCount: number;
  /** Probability that each written step of a pretraining solution is off by 1 or 2. */
  errorRate: number;
  seed: number;
  /** Prompt template the pretraining pairs are rendered with; must match sampler.prompt_template. */
  promptTemplate: string;
}

export const defaultArithTaskOptions: ArithTaskOptions = {
  trainCount: 2000, evalCount: 200, sftCount: 20000, errorRate: 0.1, seed: 1234, promptTemplate: '{question}\n',
};

/**
 * Write the bundled arithmetic task into `dir`: train.parquet (no answer column), eval.parquet
 * (with answers), sft.parquet (noisy solutions for pretraining), train-labeled.parquet and
 * sft-gold.parquet (the training questions' answers and correct solutions, for the supervised
 * baselines only) and task.json (the options).
 */
export function writeArithmeticTask(dir: string, options: ArithTaskOptions = defaultArithTaskOptions): Record<string, number> {
  const train = sampleProblems('train', options.trainCount, options.seed);
  const evalSet = sampleProblems('eval', options.evalCount, options.seed);
  writeParquet(join(dir, 'train.parquet'), queriesSpec, train.map((p, i) => ({ question_id: `train-${i}`, question: p.question })));
  writeParquet(join(dir, 'eval.parquet'), labeledQueriesSpec,
    evalSet.map((p, i) => ({ question_id: `eval-${i}`, question: p.question, answer: String(p.answer) })));
  const rng = Rng.derive(options.seed, 'sft');
  const pool = allProblems().filter((p) => splitOf(p.question) === 'train');
  const sft = Array.from({ length: options.sftCount }, () => {
    const problem = pool[rng.int(pool.length)]!;
    return {
      prompt: options.promptTemplate.split('{question}').join(problem.question),
      completion: noisySolution(problem, rng, options.errorRate).solution,
    };
  });
  writeParquet(join(dir, 'sft.parquet'), sftSpec, sft);
  // For the supervised baselines only (GRPO with gold answers, SFT on gold solutions):
  // the EMPO training path reads train.parquet, which has no answer column.
  writeParquet(join(dir, 'train-labeled.parquet'), labeledQueriesSpec,
    train.map((p, i) => ({ question_id: `train-${i}`, question: p.question, answer: String(p.answer) })));
  writeParquet(join(dir, 'sft-gold.parquet'), sftSpec, train.map((p) => ({
    prompt: options.promptTemplate.split('{question}').join(p.question),
    completion: p.solution,
  })));
  writeJsonAtomic(join(dir, 'task.json'), { generator: 'arithmetic', ...options });
  return { train: train.length, eval: evalSet.length, sft: sft.length };
}
