import { describe, expect, it } from 'vitest';
import { Rng, type RolloutRow } from '@empo/core';
import { parseConfig } from '@empo/core';
import { clusterGroup, clusterRollouts } from '../src/cluster.ts';

function rollout(questionId: string, sampleIndex: number, completion: string): RolloutRow {
  return {
    step: 1, question_id: questionId, question: 'q', sample_index: sampleIndex, prompt: 'q\n', completion,
    prompt_ids: [1], completion_ids: [2], logprobs: [-1], finished: true,
  };
}

const config = parseConfig({}).clusterer;

describe('clusterer', () => {
  it('computes clusters, entropy and EMPO rewards on a hand-computed group', async () => {
    const group = ['x \\boxed{4}', 'y \\boxed{4.0}', 'z \\boxed{\\frac{8}{2}}', '\\boxed{5}', 'no answer here'].map((c, i) => rollout('q1', i, c));
    const rows = await clusterGroup(group, config, new Rng(0));
    expect(rows.map((r) => r.answer)).toEqual(['4', '4.0', '\\frac{8}{2}', '5', null]);
    expect(rows.map((r) => r.cluster_id)).toEqual([0, 0, 0, 1, 2]);
    expect(rows.map((r) => r.cluster_size)).toEqual([3, 3, 3, 1, 1]);
    expect(rows.map((r) => r.reward)).toEqual([0.6, 0.6, 0.6, 0.2, 0]);
    const entropy = -(0.6 * Math.log(0.6) + 2 * 0.2 * Math.log(0.2));
    expect(rows[0]!.entropy).toBeCloseTo(entropy, 12);
    expect(rows.every((r) => r.keep)).toBe(true);
  });

  it('drops all-agree and all-different groups by default', async () => {
    const agree = await clusterGroup([0, 1, 2, 3].map((i) => rollout('a', i, '\\boxed{7}')), config, new Rng(0));
    expect(agree.every((r) => !r.keep && r.entropy === 0 && r.reward === 1)).toBe(true);
    const differ = await clusterGroup([0, 1, 2, 3].map((i) => rollout('d', i, `\\boxed{${i}}`)), config, new Rng(0));
    expect(differ[0]!.entropy).toBeCloseTo(Math.log(4), 12);
    expect(differ.every((r) => !r.keep)).toBe(true);
  });

  it('applies the majority-share threshold and the majority reward', async () => {
    const completions = ['\\boxed{1}', '\\boxed{1}', '\\boxed{2}', '\\boxed{3}', '\\boxed{4}', '\\boxed{5}'];
    const group = completions.map((c, i) => rollout('m', i, c));
    const strict = await clusterGroup(group, { ...config, min_majority_share: 0.5 }, new Rng(0));
    expect(strict.every((r) => !r.keep)).toBe(true);
    const majority = await clusterGroup(group, { ...config, reward: 'majority' }, new Rng(0));
    expect(majority.map((r) => r.reward)).toEqual([1, 1, 0, 0, 0, 0]);
  });

  it('clusters each question separately, keeping sample order', async () => {
    const rows = await clusterRollouts([rollout('b', 1, '\\boxed{2}'), rollout('a', 0, '\\boxed{1}'), rollout('b', 0, '\\boxed{2}')], config, 0, 1);
    expect(rows.map((r) => `${r.question_id}${r.sample_index}:${r.cluster_id}`)).toEqual(['b0:0', 'b1:0', 'a0:0']);
  });
});

describe('copy guard', () => {
  it('gives reward 0 to an answer copied from the question when on', async () => {
    const question = 'a=9 b=1+5 a+b=?';
    const make = (i: number, completion: string): RolloutRow => ({ ...rollout('c', i, completion), question });
    const group = [make(0, '1+5=6 9+6=15 \\boxed{15}'), make(1, '1+5=6 9+6=15 \\boxed{15}'), make(2, '9+1 \\boxed{5}'), make(3, '1+5=6 9+6=14 \\boxed{14}')];
    const off = await clusterGroup(group, config, new Rng(0));
    expect(off.map((r) => r.answer)).toEqual(['15', '15', '5', '14']);
    const on = await clusterGroup(group, { ...config, copy_guard: true }, new Rng(0));
    expect(on.map((r) => r.answer)).toEqual(['15', '15', null, '14']);
    expect(on[2]!.reward).toBe(0);
  });
});
