import { describe, expect, it } from 'vitest';
import { classifyGroup, clusterAnswers, keepGroup, semanticEntropy } from '../src/index.ts';

function stats(answers: (string | null)[]) {
  const { clusterIds, clusterSizes } = clusterAnswers(answers);
  return { entropy: semanticEntropy(clusterIds), clusterSizes, groupSize: answers.length };
}

describe('keepGroup', () => {
  it('drops all-agree (H = 0) and all-different (H = ln G) groups by default', () => {
    expect(classifyGroup(stats(['1', '1', '1', '1']))).toBe('entropy-too-low');
    expect(classifyGroup(stats(['1', '2', '3', '4']))).toBe('entropy-too-high');
    expect(classifyGroup(stats([null, null, null]))).toBe('entropy-too-high');
    expect(keepGroup(stats(['1', '1', '2', '3']))).toBe(true);
  });
  it('thresholds are exclusive', () => {
    const s = stats(['1', '1', '2', '3']); // H = 1.0397...
    expect(keepGroup(s, { entropyLow: s.entropy })).toBe(false);
    expect(keepGroup(s, { entropyHigh: s.entropy })).toBe(false);
    expect(keepGroup(s, { entropyLow: 1, entropyHigh: 1.1 })).toBe(true);
    expect(keepGroup({ entropy: Math.log(4) - 1e-13, clusterSizes: [1, 1, 1, 1], groupSize: 4 })).toBe(false);
  });
  it('minMajorityShare is inclusive', () => {
    const s = stats(['1', '1', '2', '3', '4', '5', '6', '7', '8', '9']); // largest share 0.2
    expect(keepGroup(s, { minMajorityShare: 0.2 })).toBe(true);
    expect(classifyGroup(s, { minMajorityShare: 0.3 })).toBe('majority-too-small');
  });
  it('an empty group is dropped', () => {
    expect(classifyGroup({ entropy: 0, clusterSizes: [], groupSize: 0 })).toBe('empty');
  });
});
