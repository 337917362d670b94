import { join } from 'node:path';
import { Rng, labeledQueriesSpec, queriesSpec, sftSpec, writeJsonAtomic, writeParquet } from '@empo/core';
import { heldOutProblems, noisySolution, problemsOf } from './arithmetic.ts';

export interface ArithTaskOptions {
  /** Unlabeled training questions, from the held-out split (never pretrained on); null: every held-out question not in the evaluation set. */
  trainCount: number | null;
  /** Labeled evaluation questions, from the held-out split, disjoint from the training questions. */
  evalCount: number;
  /** Pretraining pairs (pretraining-split questions with noisy step-by-step solutions). */
  sftCount: number;
  /** Probability that each written step of a pretraining solution is off by 1 or 2. */
  errorRate: number;
  seed: number;
  /** Prompt template the pretraining pairs are rendered with; must match sampler.prompt_template. */
  promptTemplate: string;
}

export const defaultArithTaskOptions: ArithTaskOptions = {
  trainCount: null, evalCount: 200, sftCount: 20000, errorRate: 0.1, seed: 1234, promptTemplate: '{question}\n',
};

/**
 * Write the bundled arithmetic task into `dir`: train.parquet (no answer column) and eval.parquet
 * (with answers), both from the held-out split, sft.parquet (noisy solutions of pretraining-split
 * questions, for pretraining the base), train-labeled.parquet and
 * sft-gold.parquet (the training questions' answers and correct solutions, for the supervised
 * baselines only) and task.json (the options).
 */
export function writeArithmeticTask(dir: string, options: ArithTaskOptions = defaultArithTaskOptions): Record<string, number> {
  const { train, eval: evalSet } = heldOutProblems(options.evalCount, options.trainCount, options.seed);
  writeParquet(join(dir, 'train.parquet'), queriesSpec, train.map((p, i) => ({ question_id: `train-${i}`, question: p.question })));
  writeParquet(join(dir, 'eval.parquet'), labeledQueriesSpec,
    evalSet.map((p, i) => ({ question_id: `eval-${i}`, question: p.question, answer: String(p.answer) })));
  const rng = Rng.derive(options.seed, 'sft');
  const pool = problemsOf('pretrain');
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
