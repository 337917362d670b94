import { describe, expect, it } from 'vitest';
import { Rng, parseConfig, selectBackend, type RolloutRow } from '@empo/core';
import { LocalModelJudge } from '@empo/grader';
import { CharTokenizer, Policy, tinyConfig } from '@empo/policy';
import { clusterGroup, localYesNoScorer, makeJudge } from '../src/index.ts';

function rollout(sampleIndex: number, completion: string): RolloutRow {
  return {
    step: 1, question_id: 'q', question: 'What is the capital of France?', sample_index: sampleIndex, prompt: '', completion,
    prompt_ids: [1], completion_ids: [2], logprobs: [-1], finished: true,
  };
}

describe('free-form answers with a verifier judge', () => {
  it('clusters answers the judge calls equivalent, in text mode', async () => {
    const config = parseConfig({ clusterer: { answer_mode: 'text' } }).clusterer;
    // A stand-in verifier: "Yes" exactly when both answers mention Paris.
    const judge = new LocalModelJudge((prompt) => {
      const both = (prompt.match(/Paris/g) ?? []).length >= 2;
      return { pYes: both ? 0.9 : 0.1, pNo: both ? 0.1 : 0.9 };
    });
    const group = ['\\boxed{Paris}', '\\boxed{the capital is Paris}', '\\boxed{Lyon}', '\\boxed{paris}'].map((c, i) => rollout(i, c));
    const withJudge = await clusterGroup(group, config, new Rng(0), undefined, judge);
    expect(withJudge.map((r) => r.cluster_id)).toEqual([0, 0, 1, 0]);
    expect(withJudge.map((r) => r.reward)).toEqual([0.75, 0.75, 0.25, 0.75]);
    const withoutJudge = await clusterGroup(group, config, new Rng(0));
    expect(withoutJudge.map((r) => r.cluster_id)).toEqual([0, 1, 2, 0]); // normalized text equality only
  });

  it('a local model scores P(Yes) and P(No) of its next token', async () => {
    await selectBackend('cpu', true);
    const tokenizer = CharTokenizer.fromChars('YesNo abcdefghijklmnopqrstuvwxyz?');
    const policy = Policy.init(tinyConfig({ vocabSize: tokenizer.vocabSize, hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 32,
      bosId: tokenizer.bosId, eosId: tokenizer.eosId, padId: tokenizer.padId, maxPositions: 64 }), tokenizer, 3);
    const { pYes, pNo } = localYesNoScorer(policy)('same answer?');
    expect(pYes).toBeGreaterThan(0);
    expect(pNo).toBeGreaterThan(0);
    expect(pYes + pNo).toBeLessThan(1);
    policy.dispose();
  });

  it('refuses a judge whose API key variable is unset, naming it', async () => {
    const config = parseConfig({ clusterer: { answer_mode: 'text', judge: { type: 'openai', base_url: 'http://127.0.0.1:9/v1', model: 'm', api_key_env: 'EMPO_TEST_NO_SUCH_KEY' } } }).clusterer;
    await expect(makeJudge(config)).rejects.toThrow(/EMPO_TEST_NO_SUCH_KEY is not set/);
    expect(await makeJudge(parseConfig({}).clusterer)).toBeNull();
  });
});
