import { describe, expect, it } from 'vitest';
import {
  answersEquivalent,
  clusterAnswers,
  extractAnswer,
  extractBoxed,
  gradeResponse,
  isCopiedFromQuestion,
  normalizeMathAnswer,
  parseNumber,
  type AnswerMode,
} from '../src/index.ts';
import { Rng } from '@empo/core';

const K100 = 100_000;

/** Hostile inputs: huge, deeply nested, unbalanced, regex-bait. */
function hostileInputs(): string[] {
  return [
    '{'.repeat(K100),
    '}'.repeat(K100),
    `\\boxed{${'{'.repeat(K100)}`,
    `\\boxed{${'{'.repeat(K100 / 2)}${'}'.repeat(K100 / 2)}}`,
    '\\boxed{'.repeat(K100 / 7),
    '\\boxed'.repeat(K100 / 6),
    '\\boxedx'.repeat(K100 / 7),
    `\\boxed{${'\\frac{'.repeat(5000)}1${'}{2}'.repeat(5000)}}`,
    `\\boxed{${'\\text{'.repeat(5000)}a${'}'.repeat(5000)}}`,
    'The answer is '.repeat(K100 / 14),
    `The answer is ${' '.repeat(K100)}`,
    `The answer is $${'x'.repeat(K100)}`,
    `option ${' '.repeat(K100)}`,
    'option '.repeat(K100 / 7),
    '1,'.repeat(K100 / 2),
    '9'.repeat(K100),
    `0.${'0'.repeat(K100)}1`,
    '.'.repeat(K100),
    ' . '.repeat(K100 / 3),
    '\\'.repeat(K100),
    '$'.repeat(K100),
    `x = ${'='.repeat(K100)}`,
    `1 ${'a '.repeat(K100 / 2)}1`,
    `\\boxed{10^{10^{10}}}`,
    `\\boxed{${'10^{'.repeat(2000)}10${'}'.repeat(2000)}}`,
    '\\left('.repeat(K100 / 6),
    `\\sqrt${'\\sqrt'.repeat(K100 / 5)}`,
    `\\frac${'1'.repeat(K100)}`,
    '\u0000\uffff\ud800'.repeat(K100 / 3),
    'İ'.repeat(K100) + ' The answer is 5',
  ];
}

describe('hostile inputs', () => {
  it('every public function returns a value and never throws', () => {
    const modes: AnswerMode[] = ['math', 'choice', 'text'];
    const started = Date.now();
    for (const s of hostileInputs()) {
      expect(s.length).toBeGreaterThan(10);
      const boxed = extractBoxed(s);
      expect(boxed === null || typeof boxed === 'string').toBe(true);
      for (const mode of modes) {
        const a = extractAnswer(s, mode);
        expect(a === null || typeof a === 'string').toBe(true);
        const g = gradeResponse(s, s, mode);
        expect(typeof g.correct).toBe('boolean');
      }
      expect(typeof normalizeMathAnswer(s)).toBe('string');
      expect(typeof normalizeMathAnswer(s.slice(0, 4000))).toBe('string');
      expect(typeof answersEquivalent(s, s)).toBe('boolean');
      expect(typeof answersEquivalent(s.slice(0, 900), '1')).toBe('boolean');
      expect(typeof isCopiedFromQuestion(s.slice(0, 900), s, s)).toBe('boolean');
      const c = clusterAnswers([s, s.slice(0, 900), extractAnswer(s), '1']);
      expect(c.clusterIds).toHaveLength(4);
    }
    // Generous bound for the whole loop; it takes well under this on any machine.
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('gives sensible results on specific hostile cases', () => {
    expect(extractBoxed(`\\boxed{${'{'.repeat(K100)}`)).toBeNull();
    expect(extractAnswer('İ'.repeat(K100) + ' The answer is 5')).toBe('5');
    expect(extractBoxed(`\\boxed{10^{10^{10}}}`)).toBe('10^{10^{10}}');
    expect(parseNumber('10^{10^{10}}')).toBeNull();
    expect(answersEquivalent('10^{10^{10}}', '10^{10^{10}}')).toBe(true);
    expect(answersEquivalent('10^{10^{10}}', '10^{10^{11}}')).toBe(false);
    expect(answersEquivalent('9'.repeat(500), '9'.repeat(500))).toBe(true); // Infinity is no number
    expect(answersEquivalent('9'.repeat(400), `${'9'.repeat(399)}8`)).toBe(false);
    expect(answersEquivalent('1e400', '1e401')).toBe(false);
    // Hostile answers do not turn every grade into 0: a normal answer still grades.
    expect(gradeResponse(`${'{'.repeat(K100)} the answer is 5`, '5').correct).toBe(true);
  });

  it('random fuzz: short random LaTeX-ish strings never throw', () => {
    const rng = new Rng(2024);
    const alphabet = ['\\boxed{', '\\fbox', '{', '}', '\\frac', '\\sqrt', '1', '2', '.', ',', '$', '=', 'x', '\\text{', ' cm', '%', '\\%', '^', '\\circ', '-', '+', '/', '\\left(', '\\right)', 'The answer is', 'option', '(B)', '####', '\n', '\\', 'e', '\\times10^', '\\in'];
    for (let t = 0; t < 3000; t++) {
      let s = '';
      const len = rng.int(30);
      for (let k = 0; k < len; k++) s += alphabet[rng.int(alphabet.length)];
      const a = extractAnswer(s);
      const b = extractAnswer(s, 'choice');
      expect(() => normalizeMathAnswer(s)).not.toThrow();
      expect(typeof answersEquivalent(a, s)).toBe('boolean');
      expect(b === null || /^[A-J]$/.test(b)).toBe(true);
      // Equivalence is reflexive on extractable answers.
      if (a !== null && normalizeMathAnswer(a).length > 0) expect(answersEquivalent(a, a)).toBe(true);
    }
  });
});
