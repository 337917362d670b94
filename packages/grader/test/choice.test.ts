/**
 * Multiple choice: the option letter in its usual forms, the option's text, letters beyond
 * the options, on hand-written cases and on every mmlu_stem question.
 */
import { describe, expect, it } from 'vitest';
import { choiceLetter, extractAnswer, gradeResponse, matchChoiceText } from '../src/index.ts';
import { datasetPath, hasDataset, readDataset } from './datasets.ts';

const CHOICES = ['increase the mortality rate', 'reduce the carrying capacity', '42', '\\frac{1}{2}'];

describe('choice extraction with options', () => {
  it('maps an answer that states an option text to its letter', () => {
    expect(extractAnswer('The answer is \\boxed{Reduce the carrying capacity.}', 'choice', { choices: CHOICES })).toBe('B');
    expect(extractAnswer('Answer: increase the mortality rate', 'choice', { choices: CHOICES })).toBe('A');
    expect(extractAnswer('\\boxed{0.5}', 'choice', { choices: CHOICES })).toBe('D'); // math equivalence
    expect(extractAnswer('\\boxed{42}', 'choice', { choices: CHOICES })).toBe('C');
    expect(extractAnswer('\\boxed{43}', 'choice', { choices: CHOICES })).toBeNull();
    // Without the options, the text cannot be mapped.
    expect(extractAnswer('\\boxed{42}', 'choice')).toBeNull();
  });
  it('prefers a letter, and rejects letters beyond the options', () => {
    expect(extractAnswer('\\boxed{(B)}', 'choice', { choices: CHOICES })).toBe('B');
    expect(extractAnswer('\\boxed{E}', 'choice', { choices: CHOICES })).toBeNull();
    expect(extractAnswer('\\boxed{E}', 'choice')).toBe('E');
    expect(extractAnswer('option F is wrong, so the answer is option A', 'choice', { choices: CHOICES })).toBe('A');
  });
  it('does not guess between two options with the same text', () => {
    expect(matchChoiceText('yes', ['Yes', 'No', 'YES'])).toBeNull();
    expect(matchChoiceText('Bb Bb', ['BB BB', 'BB Bb', 'Bb Bb', 'Bb bb'])).toBe('C'); // exact case first
    expect(matchChoiceText('False, True', ['True, True', 'False, False', 'True, False', 'False, True'])).toBe('D');
    expect(matchChoiceText('no', ['Yes', 'No'])).toBe('B');
    expect(matchChoiceText(null, ['Yes'])).toBeNull();
  });
  it('grades with choices and converts 0-based indices', () => {
    expect(choiceLetter(0)).toBe('A');
    expect(choiceLetter(9)).toBe('J');
    expect(choiceLetter(10)).toBeNull();
    expect(choiceLetter(-1)).toBeNull();
    expect(gradeResponse('\\boxed{42}', 'C', 'choice', { choices: CHOICES }).correct).toBe(true);
    expect(gradeResponse('\\boxed{42}', 'B', 'choice', { choices: CHOICES }).correct).toBe(false);
  });
});

interface MmluRow {
  question: string;
  choices: string[];
  answer: number | string;
}

describe.skipIf(!hasDataset('mmlu_stem'))('mmlu_stem (../shared/datasets/mmlu_stem)', () => {
  const rows = hasDataset('mmlu_stem') ? readDataset<MmluRow>('mmlu_stem') : [];

  it('reads the letter in every usual form, for every question', () => {
    const forms: ((l: string) => string)[] = [
      (l) => `Let me think. Therefore the answer is \\boxed{${l}}.`,
      (l) => `... so the correct option is (${l}).\nThe answer is (${l})`,
      (l) => `The final answer is $\\boxed{\\text{(${l})}}$`,
      (l) => `Answer: ${l}`,
      (l) => `Looking at the options, I choose option ${l} because it fits.`,
      (l) => `Reasoning...\nA: ${l}`,
      (l) => `\\boxed{${l}. something}`,
    ];
    let total = 0;
    const failures: string[] = [];
    for (const [i, row] of rows.entries()) {
      const letter = choiceLetter(Number(row.answer))!;
      expect(letter).not.toBeNull();
      for (const [f, form] of forms.entries()) {
        total++;
        const got = extractAnswer(form(letter), 'choice', { choices: row.choices });
        if (got !== letter) failures.push(`row ${i + 1} form ${f}: want ${letter} got ${got}`);
      }
    }
    console.log(`mmlu_stem letter forms: ${total - failures.length}/${total} extracted`);
    expect(failures.slice(0, 10)).toEqual([]);
  });

  it('maps the option text to its letter (when the options are distinct)', () => {
    let mapped = 0;
    let ambiguous = 0;
    const wrong: string[] = [];
    for (const [i, row] of rows.entries()) {
      const letter = choiceLetter(Number(row.answer))!;
      const text = row.choices[Number(row.answer)]!;
      const got = extractAnswer(`After checking each option, the answer is \\boxed{${text}}`, 'choice', { choices: row.choices });
      if (got === letter) mapped++;
      else if (got === null) ambiguous++;
      else wrong.push(`row ${i + 1}: want ${letter} got ${got} for ${JSON.stringify(text).slice(0, 60)}`);
    }
    console.log(`mmlu_stem option text: ${mapped}/${rows.length} mapped, ${ambiguous} not mapped, ${wrong.length} wrong`);
    if (wrong.length > 0) console.log(wrong.slice(0, 10).join('\n'));
    expect(mapped / rows.length).toBeGreaterThanOrEqual(0.97);
    expect(wrong.length / rows.length).toBeLessThanOrEqual(0.01);
  });

  it('grades letters against the 0-based answer index', () => {
    let correct = 0;
    for (const row of rows) {
      const letter = choiceLetter(Number(row.answer))!;
      if (gradeResponse(`The answer is (${letter}).`, letter, 'choice', { choices: row.choices }).correct) correct++;
      const other = choiceLetter((Number(row.answer) + 1) % row.choices.length)!;
      expect(gradeResponse(`The answer is (${other}).`, letter, 'choice', { choices: row.choices }).correct).toBe(false);
    }
    expect(correct).toBe(rows.length);
  });
});

if (!hasDataset('mmlu_stem')) {
  describe('mmlu_stem', () => {
    it.skip(`skipped: ${datasetPath('mmlu_stem')} is absent`, () => {});
  });
}
