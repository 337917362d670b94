/**
 * Grading one response against a reference answer (used by the evaluator and the gold reward).
 */
import { answersEquivalent, type EquivalenceOptions } from './equivalence.ts';
import { extractAnswer, extractBoxed, extractChoiceLetter, type AnswerMode } from './extract.ts';
import { normalizeTextAnswer } from './normalize.ts';

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

/** Extract the response's final answer and compare it with the reference. Never throws. */
export function gradeResponse(
  response: string,
  reference: string,
  mode: AnswerMode = 'math',
  options?: EquivalenceOptions,
): GradeResult {
  const extracted = extractAnswer(response, mode);
  const ref = referenceAnswer(reference, mode);
  return { extracted, correct: answerMatches(extracted, ref, mode, options) };
}
