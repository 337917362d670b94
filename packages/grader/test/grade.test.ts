import { describe, expect, it } from 'vitest';
import { answerMatches, gradeResponse, referenceAnswer } from '../src/index.ts';

describe('referenceAnswer', () => {
  it('uses a bare reference as is, or the answer inside a full solution', () => {
    expect(referenceAnswer(' x^2+33x-33 ')).toBe('x^2+33x-33');
    expect(referenceAnswer('Thus $g(x) = \\boxed{x^2 + 33x - 33}.$\nThe answer is: x^2 + 33x - 33')).toBe('x^2 + 33x - 33');
    expect(referenceAnswer('She makes 9 * 2 = $<<9*2=18>>18.\n#### 18')).toBe('18');
    expect(referenceAnswer('(B)', 'choice')).toBe('B');
    expect(referenceAnswer('The answer is (C)', 'choice')).toBe('C');
    expect(referenceAnswer('  ')).toBeNull();
  });
});

describe('gradeResponse', () => {
  it('math: extracts and compares with equivalence', () => {
    expect(gradeResponse('So $x=\\boxed{\\dfrac12}$.', '0.5')).toEqual({ extracted: '\\dfrac12', correct: true });
    expect(gradeResponse('The answer is: 1,000', 'Total \\boxed{1000}')).toEqual({ extracted: '1,000', correct: true });
    expect(gradeResponse('\\boxed{7}', '8')).toEqual({ extracted: '7', correct: false });
    expect(gradeResponse('I give up', '8')).toEqual({ extracted: null, correct: false });
  });
  it('choice: compares option letters', () => {
    expect(gradeResponse('The answer is \\boxed{\\text{(B)}}', 'B', 'choice')).toEqual({ extracted: 'B', correct: true });
    expect(gradeResponse('\\boxed{C}', 'B', 'choice').correct).toBe(false);
  });
  it('text: case- and space-insensitive match', () => {
    expect(gradeResponse('The answer is \\boxed{\\text{Paris}}', 'paris', 'text').correct).toBe(true);
    expect(gradeResponse('The answer is: The  Moon.', 'the moon', 'text').correct).toBe(true);
    expect(gradeResponse('\\boxed{London}', 'Paris', 'text').correct).toBe(false);
  });
  it('answerMatches with null sides', () => {
    expect(answerMatches(null, '1')).toBe(false);
    expect(answerMatches('1', null)).toBe(false);
  });
  it('passes equivalence options through', () => {
    expect(gradeResponse('\\boxed{50\\%}', '0.5').correct).toBe(false);
    expect(gradeResponse('\\boxed{50\\%}', '0.5', 'math', { percent: true }).correct).toBe(true);
  });
});
