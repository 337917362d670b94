import { describe, expect, it } from 'vitest';
import { extractAnswer, extractBoxed, extractChoiceLetter } from '../src/index.ts';

describe('extractBoxed', () => {
  it('reads simple and nested braces', () => {
    expect(extractBoxed('so $\\boxed{42}$.')).toBe('42');
    expect(extractBoxed('\\boxed{\\frac{1}{2}}')).toBe('\\frac{1}{2}');
    expect(extractBoxed('\\boxed{\\left(3, \\frac{\\pi}{2}\\right)}')).toBe('\\left(3, \\frac{\\pi}{2}\\right)');
    expect(extractBoxed('\\boxed{{{a}}}')).toBe('{{a}}');
  });
  it('handles escaped braces', () => {
    expect(extractBoxed('\\boxed{\\{1,2\\}}')).toBe('\\{1,2\\}');
    expect(extractBoxed('\\boxed{\\}}')).toBe('\\}');
  });
  it('takes the last box, \\boxed or \\fbox', () => {
    expect(extractBoxed('first \\boxed{1} then \\boxed{2}')).toBe('2');
    expect(extractBoxed('\\boxed{a} and \\fbox{b}')).toBe('b');
    expect(extractBoxed('\\fbox{b} and \\boxed{a}')).toBe('a');
    expect(extractBoxed('\\boxed{\\boxed{7}}')).toBe('7');
  });
  it('reads \\boxed without braces', () => {
    expect(extractBoxed('$\\boxed 5$')).toBe('5');
    expect(extractBoxed('answer \\boxed 12.')).toBe('12.');
    expect(extractBoxed('\\boxed  {3}')).toBe('3');
  });
  it('returns null when absent or unbalanced', () => {
    expect(extractBoxed('no box here')).toBeNull();
    expect(extractBoxed('')).toBeNull();
    expect(extractBoxed('\\boxed{{a}')).toBeNull();
    expect(extractBoxed('\\boxed{1} \\boxed{2')).toBeNull(); // the last one is unbalanced
    expect(extractBoxed('\\boxed')).toBeNull();
    expect(extractBoxed('\\boxed$')).toBeNull();
  });
  it('ignores other commands that start with the same letters', () => {
    expect(extractBoxed('\\boxedtext{1}')).toBeNull();
    expect(extractBoxed('\\boxed{2} \\boxedtext{1}')).toBe('2');
  });
  it('returns the empty content of an empty box', () => {
    expect(extractBoxed('\\boxed{}')).toBe('');
  });
});

describe('extractAnswer (math)', () => {
  it('prefers the last box', () => {
    expect(extractAnswer('The answer is 3. So \\boxed{4}.')).toBe('4');
    expect(extractAnswer('$x = \\boxed{\\frac{1}{2}}$.')).toBe('\\frac{1}{2}');
  });
  it('falls back to markers, the last one wins', () => {
    expect(extractAnswer('The answer is: 80')).toBe('80');
    expect(extractAnswer('Work.\n#### 1,000')).toBe('1,000');
    expect(extractAnswer('The final answer is $\\frac{3}{4}$. I hope it is correct.')).toBe('\\frac{3}{4}');
    expect(extractAnswer('Answer: 42 apples.\nMore text')).toBe('42 apples');
    expect(extractAnswer('The answer is 3.5')).toBe('3.5');
    expect(extractAnswer('the answer is 7.\nLater: the answer is 9.')).toBe('9');
    expect(extractAnswer('The answer is \\(x^2\\) here')).toBe('x^2');
  });
  it('uses markers when the last box is empty or unbalanced', () => {
    expect(extractAnswer('\\boxed{} The answer is 5')).toBe('5');
    expect(extractAnswer('The answer is 5 \\boxed{6')).toBe('5 \\boxed{6');
  });
  it('returns null when nothing is found', () => {
    expect(extractAnswer('I do not know.')).toBeNull();
    expect(extractAnswer('The answer is: ')).toBeNull();
    expect(extractAnswer('\\boxed{  }')).toBeNull();
    expect(extractAnswer(undefined as unknown as string)).toBeNull();
  });
});

describe('extractAnswer (choice)', () => {
  it('reads the option letter in its usual forms', () => {
    expect(extractAnswer('\\boxed{B}', 'choice')).toBe('B');
    expect(extractAnswer('\\boxed{(C)}', 'choice')).toBe('C');
    expect(extractAnswer('\\boxed{\\text{(D)}}', 'choice')).toBe('D');
    expect(extractAnswer('\\boxed{B. 42}', 'choice')).toBe('B');
    expect(extractAnswer('The answer is (D) 17', 'choice')).toBe('D');
    expect(extractAnswer('Answer: A', 'choice')).toBe('A');
    expect(extractAnswer('The correct answer is option B.', 'choice')).toBe('B');
    expect(extractAnswer('I pick option C because it fits', 'choice')).toBe('C');
  });
  it('returns null when there is no letter', () => {
    expect(extractAnswer('\\boxed{42}', 'choice')).toBeNull();
    expect(extractAnswer('no idea', 'choice')).toBeNull();
    expect(extractAnswer('\\boxed{Z}', 'choice')).toBeNull();
    expect(extractAnswer('Answer: I think it is (B)', 'choice')).toBe('B');
    expect(extractAnswer('the answer is option e', 'choice')).toBeNull(); // lower case is not an option
  });
  it('extractChoiceLetter on snippets', () => {
    expect(extractChoiceLetter('(B)')).toBe('B');
    expect(extractChoiceLetter('B.')).toBe('B');
    expect(extractChoiceLetter('B) 12')).toBe('B');
    expect(extractChoiceLetter('\\text{(B)}')).toBe('B');
    expect(extractChoiceLetter('option B')).toBe('B');
    expect(extractChoiceLetter('Choice (E)')).toBe('E');
    expect(extractChoiceLetter('B 42')).toBe('B');
    expect(extractChoiceLetter('Banana')).toBeNull();
    expect(extractChoiceLetter('I think so')).toBeNull();
    expect(extractChoiceLetter('A total of 5')).toBeNull();
    expect(extractChoiceLetter('optionB')).toBe('B');
    expect(extractChoiceLetter('options')).toBeNull();
    expect(extractChoiceLetter('42')).toBeNull();
  });
});
