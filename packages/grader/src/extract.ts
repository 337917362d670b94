/**
 * Final-answer extraction from model responses.
 *
 * Every function here is total (returns null instead of throwing) and does bounded,
 * linear work: `lastIndexOf`, one brace scan, and regexes made only of literals and
 * simple classes (no nested quantifiers), applied to bounded snippets where possible.
 */
import { answersEquivalent } from './equivalence.ts';
import { normalizeTextAnswer, stripDelimiters } from './normalize.ts';

/** How an answer is read: a math expression, a multiple-choice letter, or free text. */
export type AnswerMode = 'math' | 'choice' | 'text';

const BOX_COMMANDS = ['\\boxed', '\\fbox'] as const;

/** Longest snippet after an answer marker that is looked at. */
const MARKER_SNIPPET_CHARS = 1000;

/** Option letters accepted in choice mode (MMLU uses A-D, MMLU-Pro A-J). */
const CHOICE_LETTERS = 'ABCDEFGHIJ';

function isAsciiLetter(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

function isWhitespace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v';
}

/** Position just after the name of the last `\boxed` / `\fbox` command, or -1. */
function lastBoxCommandEnd(text: string): number {
  let bestStart = -1;
  let bestEnd = -1;
  for (const cmd of BOX_COMMANDS) {
    let from = text.length;
    while (from >= 0) {
      const i = text.lastIndexOf(cmd, from);
      if (i < 0) break;
      // `\boxedfoo` is another command; keep looking further left.
      if (!isAsciiLetter(text.charCodeAt(i + cmd.length))) {
        if (i > bestStart) {
          bestStart = i;
          bestEnd = i + cmd.length;
        }
        break;
      }
      from = i - 1;
    }
  }
  return bestEnd;
}

/**
 * The text inside the braces that open at `open` (which must be `{`), honouring nested
 * braces and backslash escapes (`\{`, `\}`); null when the braces never close.
 */
export function readBraced(text: string, open: number): string | null {
  if (text[open] !== '{') return null;
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\') {
      i++; // skip the escaped character (`\{`, `\}`, `\\`)
    } else if (ch === '{') {
      depth++;
    } else if (ch === '}') {
      depth--;
      if (depth === 0) return text.slice(open + 1, i);
    }
  }
  return null;
}

/**
 * Content of the LAST `\boxed{...}` or `\fbox{...}` in `text` (nested braces handled),
 * also `\boxed 5` without braces (up to the next whitespace or `$`).
 * Null when there is none, or when the last one's braces never close.
 */
export function extractBoxed(text: string): string | null {
  if (typeof text !== 'string') return null;
  const end = lastBoxCommandEnd(text);
  if (end < 0) return null;
  let i = end;
  while (i < text.length && isWhitespace(text[i])) i++;
  if (text[i] === '{') return readBraced(text, i);
  // `\boxed 5` / `\boxed5`: a bare argument, up to whitespace or a math delimiter.
  let j = i;
  while (j < text.length && !isWhitespace(text[j]) && text[j] !== '$' && text[j] !== '}') j++;
  const bare = text.slice(i, j);
  return bare.length > 0 ? bare : null;
}

/** `\text{(B)}`, `\textbf{B}`, `$B$` ... -> `(B)`, `B`: wrappers removed from a short snippet. */
function unwrapForLetter(s: string): string {
  return s
    .replace(/\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\s*\{/g, '')
    .replace(/[{}$*]/g, '')
    .replace(/\\[()[\]]/g, '')
    .trim();
}

const LETTER = `([${CHOICE_LETTERS}])`;
const KEYWORD = '(?:[Oo]ption|[Cc]hoice)';
// Applied to a snippet whose whitespace runs were collapsed to one space, so that every
// quantifier below is a single optional character (no backtracking blow-up).
const CHOICE_PATTERNS: readonly RegExp[] = [
  // `B`, `(B)`, `B.`, `B) 42`, `B 42`, but not `I think` / `A total of` (a word follows).
  new RegExp(`^\\(?${LETTER}\\)?(?:[.:,;)]|$| (?![a-z]))`),
  new RegExp(`^${KEYWORD}(?: is)? ?:? ?\\(?${LETTER}\\)?(?![A-Za-z])`),
  new RegExp(`\\(${LETTER}\\)`),
  new RegExp(`\\b${KEYWORD}(?: is)? ?:? ?\\(?${LETTER}\\)?(?![A-Za-z])`),
];

/**
 * The option letter in a short answer such as `B`, `(B)`, `B.`, `B) 42`, `\text{(B)}`,
 * `option B`, `choice (C)`; null when none is found. Letters A-J, upper case only.
 */
export function extractChoiceLetter(snippet: string): string | null {
  if (typeof snippet !== 'string') return null;
  const s = unwrapForLetter(snippet.slice(0, MARKER_SNIPPET_CHARS)).replace(/\s+/g, ' ');
  for (const re of CHOICE_PATTERNS) {
    const m = re.exec(s);
    if (m && m[1]) return m[1];
  }
  return null;
}

const ANSWER_MARKERS = /answer is|answer:|####/gi;
/** `A:` opening a line (upper case only: `a: the first term` is not a marker). */
const LINE_MARKER = /^[ \t]*A:/gm;

function lastMatchEnd(re: RegExp, text: string): number {
  let end = -1;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) end = m.index + m[0].length;
  return end;
}

/**
 * The text after the last answer marker ("final answer is", "The answer is", "####",
 * "Answer:", `A:` at the start of a line).
 */
function afterLastMarker(text: string): string | null {
  const end = Math.max(lastMatchEnd(ANSWER_MARKERS, text), lastMatchEnd(LINE_MARKER, text));
  if (end < 0) return null;
  return text.slice(end, end + MARKER_SNIPPET_CHARS);
}

/** Index of `close` in `s` at or after `from`, skipping backslash escapes; -1 when absent. */
function indexOfUnescaped(s: string, close: string, from: number): number {
  for (let i = from; i < s.length; i++) {
    if (s.startsWith(close, i)) return i;
    if (s[i] === '\\') i++;
  }
  return -1;
}

/** The answer written after a marker: a `$...$` span, or the rest of the line up to a sentence end. */
function readMarkerAnswer(rest: string): string | null {
  let s = rest.replace(/^[\s:*]+/, '');
  s = s.replace(/^(?:is\s*)?:?\s*/, '');
  const delimiters: [string, string][] = [
    ['$$', '$$'],
    ['$', '$'],
    ['\\(', '\\)'],
    ['\\[', '\\]'],
  ];
  for (const [open, close] of delimiters) {
    if (s.startsWith(open)) {
      const j = indexOfUnescaped(s, close, open.length);
      if (j >= 0) return cleanAnswer(s.slice(open.length, j));
      break;
    }
  }
  const newline = s.search(/[\r\n]/);
  let line = newline >= 0 ? s.slice(0, newline) : s;
  const sentenceEnd = line.search(/\.\s/);
  if (sentenceEnd >= 0) line = line.slice(0, sentenceEnd);
  return cleanAnswer(line);
}

/** Trim whitespace, stray `$` and a trailing period; null when nothing is left. */
function cleanAnswer(s: string): string | null {
  let start = 0;
  let end = s.length;
  while (start < end && (isWhitespace(s[start]) || s[start] === '$')) start++;
  while (end > start && (isWhitespace(s[end - 1]) || s[end - 1] === '$' || s[end - 1] === '.')) end--;
  const out = s.slice(start, end);
  return out.length > 0 ? out : null;
}

const OPTION_ANYWHERE = new RegExp(`\\b${KEYWORD}\\s*\\(?${LETTER}\\)?(?![A-Za-z])`, 'g');

/** The letter of the last "option X" / "choice X" mention in a whole text. */
function lastOptionMention(text: string): string | null {
  let letter: string | null = null;
  OPTION_ANYWHERE.lastIndex = 0;
  for (let m = OPTION_ANYWHERE.exec(text); m !== null; m = OPTION_ANYWHERE.exec(text)) letter = m[1]!;
  return letter;
}

export interface ExtractOptions {
  /**
   * Choice mode: the options' texts, in order (A, B, ...). Letters beyond the list are
   * rejected, and an answer that states an option's text instead of its letter
   * (`\\boxed{increase the mortality rate}`) is mapped to that option's letter.
   */
  choices?: readonly string[];
}

/** The option whose text the answer states (normalized text or math equivalence), as a letter. */
export function matchChoiceText(answer: string | null, choices: readonly string[]): string | null {
  if (answer === null || choices.length === 0 || answer.length > MARKER_SNIPPET_CHARS) return null;
  if (normalizeTextAnswer(answer).length === 0) return null;
  const options = choices.slice(0, CHOICE_LETTERS.length).map((c) => (typeof c === 'string' ? c : ''));
  // Strictest test first, so that `Bb Bb` is not taken for `BB BB` nor `False, True` for
  // `True, False`: exact text (spaces collapsed), then case-insensitive text, then math.
  const exact = (s: string) => stripDelimiters(s).replace(/\s+/g, ' ').replace(/\.$/, '').trim();
  const tests: ((option: string) => boolean)[] = [
    (o) => exact(o) === exact(answer),
    (o) => normalizeTextAnswer(o) === normalizeTextAnswer(answer),
    (o) => answersEquivalent(answer, o),
  ];
  for (const test of tests) {
    const hits = options.flatMap((o, k) => (o.length > 0 && test(o) ? [k] : []));
    if (hits.length === 1) return CHOICE_LETTERS[hits[0]!]!;
    // Two options with the same text (or value) cannot be told apart.
    if (hits.length > 1) return null;
  }
  return null;
}

function letterInRange(letter: string | null, choices: readonly string[] | undefined): string | null {
  if (letter === null || choices === undefined) return letter;
  return CHOICE_LETTERS.indexOf(letter) < choices.length ? letter : null;
}

/** `B`, `(B)`, `B.`, `\\text{(B)}`: nothing but a letter. */
function isBareLetter(s: string): boolean {
  return /^\(?[A-J]\)?[.:]?$/.test(unwrapForLetter(s).replace(/\s+/g, ''));
}

/** The answer read as a letter, or (with options) as an option's text when it is more than a letter. */
function choiceFrom(answer: string, choices: readonly string[] | undefined): string | null {
  if (choices !== undefined && !isBareLetter(answer)) {
    const byText = matchChoiceText(cleanAnswer(answer), choices);
    if (byText) return byText;
  }
  return letterInRange(extractChoiceLetter(answer), choices);
}

function extractChoice(text: string, boxed: string | null, choices: readonly string[] | undefined): string | null {
  if (boxed !== null) {
    const letter = choiceFrom(boxed, choices);
    if (letter) return letter;
  }
  const rest = afterLastMarker(text);
  const marked = rest === null ? null : rest.replace(/^[\s:*]+/, '');
  if (marked !== null) {
    const stated = choices === undefined ? null : readMarkerAnswer(rest!);
    const letter = (stated === null ? null : choiceFrom(stated, choices)) ?? letterInRange(extractChoiceLetter(marked), choices);
    if (letter) return letter;
  }
  return letterInRange(lastOptionMention(text), choices);
}

/**
 * The final answer of a response.
 * - math / text: the last `\\boxed{}` content; otherwise the text after the last marker
 *   ("final answer is", "The answer is", "####", "Answer:", `A:` at a line start), cut at
 *   the end of its `$...$` span, line or sentence.
 * - choice: the option letter (A-J) from the boxed content, then after a marker, then the
 *   last "option X" / "choice X" mention; with `options.choices`, letters beyond the list
 *   are rejected and an option's text maps to its letter.
 * Null when nothing can be extracted; never throws.
 */
export function extractAnswer(text: string, mode: AnswerMode = 'math', options?: ExtractOptions): string | null {
  if (typeof text !== 'string') return null;
  const boxed = extractBoxed(text);
  if (mode === 'choice') return extractChoice(text, boxed, options?.choices);
  if (boxed !== null) {
    const cleaned = cleanAnswer(boxed);
    if (cleaned !== null) return cleaned;
  }
  const rest = afterLastMarker(text);
  if (rest === null) return null;
  return readMarkerAnswer(rest);
}

const LAST_NUMBER = /(?<![A-Za-z0-9_.])-?\d+(?:,\d{3})*(?:\.\d+)?(?![A-Za-z0-9_])/g;

/**
 * The last number written in a text (`1,234.5`, `-3`), not part of a word (`sepehr2010`);
 * null when there is none. The grader's fallback when the reference is a number and the
 * response has no box or marker.
 */
export function extractLastNumber(text: string): string | null {
  if (typeof text !== 'string') return null;
  let last: string | null = null;
  LAST_NUMBER.lastIndex = 0;
  for (let m = LAST_NUMBER.exec(text); m !== null; m = LAST_NUMBER.exec(text)) last = m[0];
  return last;
}
