import { describe, expect, it } from 'vitest';
import { guardAnswers, isCopiedFromQuestion, isUnextractable, numbersInText } from '../src/index.ts';

const question = 'Tom has 12 apples and buys 30 more. How many apples does he have?';

describe('isUnextractable', () => {
  it('null and empty-after-normalization answers', () => {
    expect(isUnextractable(null)).toBe(true);
    expect(isUnextractable(undefined)).toBe(true);
    expect(isUnextractable('')).toBe(true);
    expect(isUnextractable('  ')).toBe(true);
    expect(isUnextractable('$ $')).toBe(true);
    expect(isUnextractable('.')).toBe(true);
    expect(isUnextractable('0')).toBe(false);
    expect(isUnextractable('x')).toBe(false);
  });
});

describe('isCopiedFromQuestion', () => {
  it('flags a number from the question when the work shows nothing else', () => {
    expect(isCopiedFromQuestion('12', question, 'Tom has 12 apples. \\boxed{12}')).toBe(true);
    expect(isCopiedFromQuestion('30', question, '\\boxed{30}')).toBe(true);
    expect(isCopiedFromQuestion('12', question)).toBe(true); // no work given: first condition only
  });
  it('does not flag real work or answers not in the question', () => {
    expect(isCopiedFromQuestion('42', question, '12 + 30 = 42, \\boxed{42}')).toBe(false);
    // The answer is in the question, but the work computed something new.
    expect(isCopiedFromQuestion('12', question, '30 - 18 = 12, so \\boxed{12}')).toBe(false);
    expect(isCopiedFromQuestion('x+1', 'x+1 = 2', 'x+1')).toBe(false); // not a number
    expect(isCopiedFromQuestion(null, question)).toBe(false);
    expect(isCopiedFromQuestion('1.2', question, '1.2')).toBe(false); // "12" is not "1.2"
  });
  it('reads numbers with thousands separators', () => {
    expect([...numbersInText('pay 1,000 or 2.5')]).toEqual([1000, 2.5]);
    expect(isCopiedFromQuestion('1000', 'It costs $1,000.', 'It costs 1,000, \\boxed{1000}')).toBe(true);
  });
});

describe('guardAnswers', () => {
  it('nulls empty answers always and copied ones only when asked', () => {
    const answers = ['12', '42', '', null];
    const responses = ['\\boxed{12}', '12+30=42 \\boxed{42}', '\\boxed{}', 'no idea'];
    expect(guardAnswers(answers)).toEqual(['12', '42', null, null]);
    expect(guardAnswers(answers, { question, responses })).toEqual(['12', '42', null, null]);
    expect(guardAnswers(answers, { question, responses, copyGuard: true })).toEqual([null, '42', null, null]);
  });
  it('rejects misaligned responses', () => {
    expect(() => guardAnswers(['1'], { responses: [] })).toThrow(RangeError);
  });
});
