import { Rng } from '@empo/core';
import { describe, expect, it } from 'vitest';
import {
  REWARD_NAMES,
  clusterAnswers,
  getReward,
  guardAnswers,
  isRewardName,
  type RewardGroup,
} from '../src/index.ts';

function group(answers: (string | null)[], extra: Partial<RewardGroup> = {}): RewardGroup {
  const guarded = guardAnswers(answers);
  return { answers: guarded, ...clusterAnswers(guarded), rng: new Rng(7), ...extra };
}

// G = 6: {1/2, 0.5, 0.5} share 3/6; 3, 7 singletons; one unextractable.
const answers = ['1/2', '0.5', '3', null, '0.5', '7'];

describe('rewards', () => {
  it('empo = share of the cluster, 0 when unextractable', () => {
    const r = getReward('empo')(group(answers));
    expect(r).toEqual([0.5, 0.5, 1 / 6, 0, 0.5, 1 / 6]);
  });
  it('empo on [a,a,b,c] = [1/2, 1/2, 1/4, 1/4]', () => {
    expect(getReward('empo')(group(['a', 'a', 'b', 'c']))).toEqual([0.5, 0.5, 0.25, 0.25]);
  });
  it('empo gives an empty answer 0', () => {
    expect(getReward('empo')(group(['', '$ $', '4', '4']))).toEqual([0, 0, 0.5, 0.5]);
  });
  it('majority = 1 in a largest cluster', () => {
    expect(getReward('majority')(group(answers))).toEqual([1, 1, 0, 0, 1, 0]);
  });
  it('majority ties: every largest cluster counts', () => {
    expect(getReward('majority')(group(['a', 'a', 'b', 'b', 'c']))).toEqual([1, 1, 1, 1, 0]);
    expect(getReward('majority')(group(['1', '2', '3']))).toEqual([1, 1, 1]);
    expect(getReward('majority')(group([null, null]))).toEqual([0, 0]);
    // Unextractable singletons never form the majority.
    expect(getReward('majority')(group([null, '2', null]))).toEqual([0, 1, 0]);
  });
  it('gold = 1 when equivalent to the reference (bare or a full solution)', () => {
    expect(getReward('gold')(group(answers, { reference: '3' }))).toEqual([0, 0, 1, 0, 0, 0]);
    expect(getReward('gold')(group(answers, { reference: 'So it is $\\boxed{\\frac{1}{2}}$.' }))).toEqual([
      1, 1, 0, 0, 1, 0,
    ]);
    expect(getReward('gold')(group(['B', '(C)', null], { reference: 'B', mode: 'choice' }))).toEqual([1, 0, 0]);
  });
  it('gold without a reference is a clear error', () => {
    expect(() => getReward('gold')(group(answers))).toThrow(/needs a reference answer/);
    expect(() => getReward('gold')(group(answers, { reference: null }))).toThrow(/needs a reference answer/);
  });
  it('random is a seeded fair coin in {0, 1}', () => {
    const a = getReward('random')(group(answers, { rng: new Rng(123) }));
    const b = getReward('random')(group(answers, { rng: new Rng(123) }));
    expect(a).toEqual(b);
    expect(a.every((x) => x === 0 || x === 1)).toBe(true);
    const many = getReward('random')(group(new Array<string>(10_000).fill('1'), { rng: new Rng(1) }));
    const mean = many.reduce((s, x) => s + x, 0) / many.length;
    expect(mean).toBeGreaterThan(0.47);
    expect(mean).toBeLessThan(0.53);
  });
  it('format = 1 when an answer was extracted', () => {
    expect(getReward('format')(group(answers))).toEqual([1, 1, 1, 0, 1, 1]);
    expect(getReward('format')(group(['', '5']))).toEqual([0, 1]);
  });
  it('getReward lists the valid names on a bad name', () => {
    expect(REWARD_NAMES).toEqual(['empo', 'majority', 'gold', 'random', 'format']);
    expect(isRewardName('empo')).toBe(true);
    expect(isRewardName('toString')).toBe(false);
    expect(() => getReward('entropy')).toThrow("unknown reward 'entropy'; valid rewards: empo, majority, gold, random, format");
  });
  it('rejects inconsistent groups', () => {
    const g = group(['1', '2']);
    expect(() => getReward('empo')({ ...g, clusterIds: [0] })).toThrow(/cluster ids/);
    expect(() => getReward('empo')({ ...g, clusterIds: [0, 5] })).toThrow(/outside/);
  });
});
