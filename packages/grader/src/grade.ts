/**
 * Grading one response against a reference answer (used by the evaluator and the gold reward).
 */
import { answersEquivalent, type EquivalenceOptions } from './equivalence.ts';
import { extractAnswer, extractBoxed, extractChoiceLetter, extractLastNumber, type AnswerMode } from './extract.ts';
import { normalizeMathAnswer, normalizeTextAnswer } from './normalize.ts';
import { parseNumber } from './numeric.ts';

/** Options of `gradeResponse`: the equivalence options, plus extraction choices. */
export interface GradeOptions extends EquivalenceOptions {
  /** Choice mode: the options' texts (A, B, ...), see `ExtractOptions.choices`. */
  choices?: readonly string[];
  /**
   * Math mode: when the response has no box and no answer marker and the reference is a
   * plain number, grade the last number written in the response (default true).
   */
  lastNumberFallback?: boolean;
}

/** The letter of a 0-based option index (MMLU's `answer: 2` -> `C`); null outside A-J. */
export function choiceLetter(index: number): string | null {
  return Number.isInteger(index) && index >= 0 && index < 10 ? 'ABCDEFGHIJ'[index]! : null;
}

export interface GradeResult {
  /** The answer extracted from the response, or null. */
  extracted: string | null;
  /** Whether it is equivalent to the reference. */
  correct: boolean;
}

/**
 * The answer a reference stands for. A reference may be a bare answer (`x^2+33x-33`, `B`)
 * or a full solution: its last `\boxed{}`, else the text after its last answer marker
 * (`#### 42`, "The answer is: 42"), else the whole reference. Null when empty.
 */
export function referenceAnswer(reference: string, mode: AnswerMode = 'math'): string | null {
  if (typeof reference !== 'string') return null;
  const ref = reference.trim();
  if (ref.length === 0) return null;
  if (mode === 'choice') return extractChoiceLetter(ref) ?? extractAnswer(ref, 'choice');
  const boxed = extractBoxed(ref);
  if (boxed !== null && boxed.trim().length > 0) return boxed.trim();
  if (/answer is|answer:|####/i.test(ref)) {
    const marked = extractAnswer(ref, mode);
    if (marked !== null) return marked;
  }
  return ref;
}

/** Whether an extracted answer matches a (bare) reference answer in the given mode. */
export function answerMatches(
  answer: string | null,
  reference: string | null,
  mode: AnswerMode = 'math',
  options?: EquivalenceOptions,
): boolean {
  if (answer === null || reference === null) return false;
  if (mode === 'choice') return answer.trim().toUpperCase() === reference.trim().toUpperCase();
  if (answersEquivalent(answer, reference, options)) return true;
  if (mode === 'text') {
    const a = normalizeTextAnswer(answer);
    return a.length > 0 && a === normalizeTextAnswer(reference);
  }
  return false;
}

/**
 * Extract the response's final answer and compare it with the reference. In math mode, a
 * response without box or marker is graded by its last number when the reference is a
 * plain number (`lastNumberFallback`). Never throws.
 */
export function gradeResponse(
  response: string,
  reference: string,
  mode: AnswerMode = 'math',
  options?: GradeOptions,
): GradeResult {
  let extracted = extractAnswer(response, mode, { choices: options?.choices });
  const ref = referenceAnswer(reference, mode);
  if (extracted === null && mode === 'math' && ref !== null && options?.lastNumberFallback !== false) {
    if (ref.length <= 200 && parseNumber(normalizeMathAnswer(ref)) !== null) extracted = extractLastNumber(response);
  }
  return { extracted, correct: answerMatches(extracted, ref, mode, options) };
}
