import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labeledQueriesSpec, parseConfig, queriesSpec, writeParquet, type EmpoConfig } from '@empo/core';
import { CharTokenizer, Policy, tinyConfig } from '@empo/policy';
import { makeProblem, sampleProblems } from '@empo/tasks';

/**
 * A throwaway workspace with a very small random model and a few arithmetic questions, and
 * a config pointing at them. Used by the end-to-end tests.
 */
export async function makeTinyWorkspace(overrides: Record<string, unknown> = {}): Promise<{ dir: string; config: EmpoConfig }> {
  const dir = mkdtempSync(join(tmpdir(), 'empo-e2e-'));
  const tokenizer = CharTokenizer.fromCorpus([makeProblem(1, 2, 3, '+', 'a+b').solution, 'a=0123456789 b+-*?\n\\boxed{}']);
  const config = tinyConfig({
    vocabSize: tokenizer.vocabSize, hiddenSize: 32, numLayers: 2, numHeads: 2, numKvHeads: 1, intermediateSize: 64,
    bosId: tokenizer.bosId, eosId: tokenizer.eosId, padId: tokenizer.padId, maxPositions: 128,
  });
  const policy = Policy.init(config, tokenizer, 7);
  await policy.save(join(dir, 'model'));
  policy.dispose();
  writeParquet(join(dir, 'train.parquet'), queriesSpec,
    sampleProblems('pretrain', 12, 5).map((p, i) => ({ question_id: `t${i}`, question: p.question })));
  writeParquet(join(dir, 'eval.parquet'), labeledQueriesSpec,
    sampleProblems('heldout', 6, 5).map((p, i) => ({ question_id: `e${i}`, question: p.question, answer: String(p.answer) })));
  return {
    dir,
    config: parseConfig({
      run: 'e2e', runs_dir: join(dir, 'runs'), backend: 'cpu', model: join(dir, 'model'),
      train_queries: join(dir, 'train.parquet'), eval_queries: join(dir, 'eval.parquet'),
      sampler: { questions_per_step: 3, num_generations: 4, max_new_tokens: 12 },
      trainer: { learning_rate: 1e-3, micro_batch_size: 5 },
      evaluator: { max_new_tokens: 12 },
      ...overrides,
    }),
  };
}
