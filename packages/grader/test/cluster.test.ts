import { describe, expect, it } from 'vitest';
import { clusterAnswers, entropyFromSizes, semanticEntropy } from '../src/index.ts';

describe('clusterAnswers', () => {
  it('groups equivalent answers greedily, ids in order of first appearance', () => {
    const r = clusterAnswers(['\\frac{1}{2}', '3', '0.5', '1/2', '3.0', '7']);
    expect(r.clusterIds).toEqual([0, 1, 0, 0, 1, 2]);
    expect(r.clusterSizes).toEqual([3, 2, 1]);
  });
  it('makes each unextractable answer its own singleton', () => {
    const r = clusterAnswers([null, '5', null, '5', '', '   ']);
    expect(r.clusterIds).toEqual([0, 1, 2, 1, 3, 4]);
    expect(r.clusterSizes).toEqual([1, 2, 1, 1, 1]);
  });
  it('empty-after-normalization answers are unextractable and never representatives', () => {
    const r = clusterAnswers(['$ $', '$$', '4']);
    expect(r.clusterIds).toEqual([0, 1, 2]);
  });
  it('compares with the representative (first member) only, in cluster order', () => {
    // A tolerant comparer that is not transitive: |a - b| <= 1.
    const close = (a: string, b: string) => Math.abs(Number(a) - Number(b)) <= 1;
    const r = clusterAnswers(['1', '2', '3', '0'], close);
    // 2 joins 1; 3 is compared with 1 (the representative), not with 2 -> new cluster;
    // 0 joins the first cluster whose representative is close (1).
    expect(r.clusterIds).toEqual([0, 0, 1, 0]);
    expect(r.clusterSizes).toEqual([3, 1]);
  });
  it('handles an empty group', () => {
    expect(clusterAnswers([])).toEqual({ clusterIds: [], clusterSizes: [] });
  });
});

describe('semanticEntropy', () => {
  it('[a,a,b,c] = -(0.5 ln 0.5 + 2 * 0.25 ln 0.25)', () => {
    const expected = -(0.5 * Math.log(0.5) + 2 * 0.25 * Math.log(0.25));
    expect(semanticEntropy([0, 0, 1, 2])).toBeCloseTo(expected, 12);
    expect(expected).toBeCloseTo(1.0397207708399179, 12);
    const { clusterIds } = clusterAnswers(['a', 'a', 'b', 'c']);
    expect(semanticEntropy(clusterIds)).toBeCloseTo(expected, 12);
  });
  it('all the same = 0, all distinct = ln G', () => {
    expect(semanticEntropy([0, 0, 0, 0, 0, 0, 0])).toBe(0);
    expect(Object.is(semanticEntropy([3, 3]), 0)).toBe(true); // not -0
    expect(semanticEntropy([0, 1, 2, 3, 4, 5, 6])).toBeCloseTo(Math.log(7), 12);
    expect(semanticEntropy([])).toBe(0);
  });
  it('does not depend on id values or order', () => {
    expect(semanticEntropy([5, 9, 5, 5])).toBeCloseTo(semanticEntropy([0, 0, 0, 1]), 15);
  });
  it('entropyFromSizes agrees', () => {
    expect(entropyFromSizes([2, 1, 1])).toBeCloseTo(semanticEntropy([0, 0, 1, 2]), 15);
    expect(entropyFromSizes([])).toBe(0);
    // 3 of 4 agree: -(0.75 ln 0.75 + 0.25 ln 0.25)
    expect(entropyFromSizes([3, 1])).toBeCloseTo(0.5623351446188083, 12);
  });
});
