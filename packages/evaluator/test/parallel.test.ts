/** Evaluation with the generation on 2 worker threads gives the same rows as in this thread. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '@empo/core';
import { CharTokenizer, Policy, PolicyWorkers, tinyConfig, useBackend } from '@empo/policy';
import { evaluatePolicy, evaluatePolicyParallel } from '../src/evaluate.ts';

describe('evaluatePolicyParallel', () => {
  it('equals evaluatePolicy (greedy and k samples), row for row', async () => {
    await useBackend('wasm');
    const tokenizer = CharTokenizer.fromChars('0123456789 +-*=ab?\\boxed{}\n');
    const config = tinyConfig({ vocabSize: tokenizer.vocabSize, hiddenSize: 32, numLayers: 2, numHeads: 2, numKvHeads: 1, intermediateSize: 64, bosId: tokenizer.bosId, eosId: tokenizer.eosId, padId: tokenizer.padId });
    const policy = Policy.init(config, tokenizer, 3);
    const workers = await PolicyWorkers.start({ workers: 2, backend: 'wasm', model: policy });
    try {
      const questions = Array.from({ length: 7 }, (_, i) => ({ question_id: `q${i}`, question: `a=${i} b=${i + 2} a+b=?`, answer: String(2 * i + 2) }));
      const evaluator = parseConfig({ evaluator: { num_samples: 3, max_new_tokens: 10, batch_size: 8 } }).evaluator;
      const local = evaluatePolicy(policy, questions, evaluator, '{question}\n', 5);
      const pooled = await evaluatePolicyParallel(policy, workers, questions, evaluator, '{question}\n', 5);
      expect(pooled).toEqual(local);
      expect(local.length).toBe(7 * 4);
    } finally {
      await workers.close();
      policy.dispose();
    }
  });
});
