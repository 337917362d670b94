/**
 * Reward-hacking guards applied to extracted answers before clustering.
 * - empty: an answer that is empty after normalization (`\boxed{}`, `$ $`, `.`) counts as
 *   unextractable.
 * - copied from the question (optional, default off): see `isCopiedFromQuestion`.
 */
import { normalizeMathAnswer } from './normalize.ts';
import { parseNumber } from './numeric.ts';

/** Answers longer than this are never normalized here (only checked for blankness). */
const MAX_GUARD_CHARS = 4096;

/** True when there is no usable answer: null, or empty after normalization. */
export function isUnextractable(answer: string | null | undefined): boolean {
  if (typeof answer !== 'string') return true;
  if (answer.trim().length === 0) return true;
  if (answer.length > MAX_GUARD_CHARS) return false;
  return normalizeMathAnswer(answer).length === 0;
}

const NUMBER_TOKEN = /-?\d+(?:,\d{3})*(?:\.\d+)?/g;

/** The numbers written in a text (`1,000` read as 1000). */
export function numbersInText(text: string): Set<number> {
  const out = new Set<number>();
  NUMBER_TOKEN.lastIndex = 0;
  for (let m = NUMBER_TOKEN.exec(text); m !== null; m = NUMBER_TOKEN.exec(text)) {
    const v = Number(m[0].replace(/,/g, ''));
    if (Number.isFinite(v)) {
      out.add(v);
      if (v < 0) out.add(-v); // "x-5": the 5 is there too
    }
  }
  return out;
}

/**
 * Conservative "copied from the question" test: true only when the normalized answer is a
 * plain number that appears as a number in the question text AND the work (the response,
 * when given) shows nothing else: every number written in the work also appears in the
 * question. A real solution nearly always writes an intermediate result that is not in the
 * question, so it is not flagged. Without `work` only the first condition is checked (less
 * conservative). Non-numeric answers are never flagged.
 */
export function isCopiedFromQuestion(answer: string | null, question: string, work?: string): boolean {
  if (typeof answer !== 'string' || typeof question !== 'string') return false;
  if (answer.length > MAX_GUARD_CHARS) return false;
  const value = parseNumber(normalizeMathAnswer(answer));
  if (value === null) return false;
  const inQuestion = numbersInText(question);
  if (!inQuestion.has(value)) return false;
  if (work === undefined) return true;
  for (const n of numbersInText(work)) if (!inQuestion.has(n)) return false;
  return true;
}

export interface GuardOptions {
  /** The question the answers respond to (needed by the copy guard). */
  question?: string;
  /** The full responses, index-aligned with the answers (the "work" of the copy guard). */
  responses?: readonly string[];
  /** Treat answers copied from the question as unextractable (default false). */
  copyGuard?: boolean;
}

/**
 * The answers with guarded ones replaced by null (unextractable): empty answers always,
 * copied-from-question answers when `copyGuard` is on and a question is given.
 */
export function guardAnswers(answers: readonly (string | null)[], options: GuardOptions = {}): (string | null)[] {
  const { question, responses, copyGuard = false } = options;
  if (responses !== undefined && responses.length !== answers.length) {
    throw new RangeError(`guardAnswers: ${responses.length} responses for ${answers.length} answers`);
  }
  return answers.map((answer, i) => {
    if (answer === null || isUnextractable(answer)) return null;
    if (copyGuard && question !== undefined && isCopiedFromQuestion(answer, question, responses?.[i])) return null;
    return answer;
  });
}
