/**
 * MATH-style answer normalization (after Hendrycks et al.'s `strip_string`, extended).
 *
 * Each rule is a small named function; `normalizeMathAnswer` applies them in order.
 * All rules are linear scans or regexes without nested quantifiers. Strings longer than
 * `MAX_NORMALIZE_CHARS` are only trimmed: a real final answer is never that long, and the
 * bound keeps hostile inputs cheap.
 */

export const MAX_NORMALIZE_CHARS = 4096;

/** Unicode look-alikes and math delimiters that only wrap the answer. */
export function stripDelimiters(s: string): string {
  let out = s
    .replace(/[\r\n\t]/g, ' ')
    .replace(/\u2212/g, '-') // unicode minus
    .replace(/\u221e/g, '\\infty')
    .replace(/\\\$/g, '')
    .replace(/\$/g, '')
    .trim();
  for (const [open, close] of [
    ['\\(', '\\)'],
    ['\\[', '\\]'],
  ] as const) {
    if (out.startsWith(open) && out.endsWith(close) && out.length >= open.length + close.length) {
      out = out.slice(open.length, out.length - close.length).trim();
    }
  }
  return out;
}

/** `\left(` -> `(`, `\right]` -> `]`, `\left.` / `\right.` -> nothing; `\displaystyle` removed. */
export function stripSizing(s: string): string {
  return s
    .replace(/\\displaystyle/g, '')
    .replace(/\\(?:left|right)\.(?![0-9])/g, '')
    .replace(/\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)(?![A-Za-z])/g, '');
}

/** Spacing commands `\!`, `\,`, `\;`, `\:`, `\ `, `~`, `\quad`, `\qquad` -> a space. */
export function stripSpacing(s: string): string {
  // `(?<!\\)`: the `\\` of a matrix row break followed by a space is not `\ `.
  return s.replace(/\\q?quad(?![A-Za-z])/g, ' ').replace(/(?<!\\)\\[!,;: ]/g, ' ').replace(/~/g, ' ');
}

/**
 * Synonyms to one spelling: `\dfrac` / `\tfrac` / `\cfrac` -> `\frac`, `\dbinom` / `\tbinom` ->
 * `\binom`; `\leq` / `\leqslant` -> `\le`, `\geq` / `\geqslant` -> `\ge`, `\neq` -> `\ne`,
 * `\lt` / `\gt` -> `<` / `>`; `\emptyset` / `\varnothing` -> `\{\}`.
 */
export function canonicalCommands(s: string): string {
  if (!s.includes('\\')) return s;
  return s
    .replace(/\\[dtc]frac(?![A-Za-z])/g, '\\frac')
    .replace(/\\[dt]binom(?![A-Za-z])/g, '\\binom')
    .replace(/\\leq(?:slant)?(?![A-Za-z])/g, '\\le')
    .replace(/\\geq(?:slant)?(?![A-Za-z])/g, '\\ge')
    .replace(/\\neq(?![A-Za-z])/g, '\\ne')
    .replace(/\\lt(?![A-Za-z])/g, '<')
    .replace(/\\gt(?![A-Za-z])/g, '>')
    .replace(/\\(?:emptyset|varnothing)(?![A-Za-z])/g, '\\{\\}');
}

/** Degree marks: `^\circ`, `^{\circ}`, `°`, `\degree` removed. */
export function stripDegrees(s: string): string {
  return s.replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![A-Za-z])|\u00b0|\\degree(?![A-Za-z])/g, '');
}

/** Percent signs `\%` and `%` removed. */
export function stripPercent(s: string): string {
  return s.replace(/\\%/g, '').replace(/%/g, '');
}

const TEXT_COMMAND = /\\(?:text|textrm|textbf|textit|textsf|textnormal|mbox|mathrm|mathbf|mathit|mathsf|boldsymbol)\s*\{/g;
const UNIT_CONTENT = /^[\sA-Za-z.]*$/;
const UNIT_POWER = /^(?:\^\s*\{?\s*[23]\s*\}?)?$/;

/**
 * `\text{...}`, `\mbox{...}`, `\mathrm{...}`, `\textbf{...}`, `\mathbf{...}` ...: a trailing unit (only letters, after something
 * else, optionally `^2`/`^3`) is dropped (`5\text{ cm}^2` -> `5`); any other is unwrapped
 * (`\text{Monday}` -> `Monday`). Unbalanced braces stop the rule (left as is).
 */
export function stripTextCommands(s: string): string {
  let out = s;
  let from = 0;
  for (;;) {
    TEXT_COMMAND.lastIndex = from;
    const m = TEXT_COMMAND.exec(out);
    if (m === null) return out;
    const open = m.index + m[0].length - 1;
    const close = matchingBrace(out, open);
    if (close < 0) return out;
    const content = out.slice(open + 1, close);
    const before = out.slice(0, m.index);
    const after = out.slice(close + 1);
    if (before.trim().length > 0 && UNIT_CONTENT.test(content) && UNIT_POWER.test(after.trim())) {
      out = before;
      from = before.length;
    } else {
      out = before + content + after;
      from = m.index;
    }
  }
}

/** Index of the `}` matching the `{` at `open` (backslash escapes skipped), or -1. */
function matchingBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const ch = s[i];
    if (ch === '\\') i++;
    else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return i;
  }
  return -1;
}

/** Words that are math, not units: never dropped after a number. */
const NOT_UNITS = new Set(['pi', 'i', 'e', 'sqrt', 'infty', 'infinity', 'inf', 'and', 'or', 'to', 'x', 'y', 'z', 'n']);

/** `5 cm`, `12 dollars`, `3 square feet` -> the number (plain words after a plain number). */
export function stripUnitWords(s: string): string {
  const m = /^([+-]?[\d.,]+)\s+([A-Za-z][A-Za-z\s.]*)$/.exec(s.trim());
  if (m === null) return s;
  const words = m[2]!.trim().replace(/\.$/, '').split(/\s+/);
  for (const w of words) {
    if (w.length < 2 || NOT_UNITS.has(w.toLowerCase())) return s;
  }
  return m[1]!;
}

/** Trailing periods (and spaces) removed: `5.` -> `5`. */
export function stripTrailingPeriod(s: string): string {
  let end = s.length;
  while (end > 0 && (s[end - 1] === '.' || s[end - 1] === ' ')) end--;
  return s.slice(0, end);
}

/**
 * Thousands separators: the whole answer is one number with groups of three digits
 * (`1,000`, `-12,345.5`, `1{,}000`) -> commas removed. Tuples and lists (`(1,2)`, `1, 234`
 * with a space) are left alone.
 */
export function stripThousandsSeparators(s: string): string {
  const t = s.replace(/\{,\}/g, ',').trim();
  if (/^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(t)) return t.replace(/,/g, '');
  return s;
}

/**
 * All whitespace removed, except one space between a command name and a letter, which
 * keeps them apart (`\\pi r` stays `\\pi r`, not the unknown command `\\pir`).
 */
export function stripWhitespace(s: string): string {
  if (!s.includes('\\')) return s.replace(/\s+/g, '');
  return s.replace(/(\\[A-Za-z]+)\s+(?=[A-Za-z])/g, '$1\u0000').replace(/\s+/g, '').replace(/\u0000/g, ' ');
}

/**
 * `x=3` -> `3`, `x\in[1,2]` -> `[1,2]`: a single variable (one letter, optionally subscripted,
 * or a Greek command such as `\theta`) on the left of the only `=` (or of `\in`).
 */
export function stripVariableAssignment(s: string): string {
  const m = /^(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?(?:=|\\in(?![A-Za-z]))([^=]+)$/.exec(s);
  if (m === null) return s;
  return m[1]!;
}

/** A leading `+` removed: `+5` -> `5`. */
export function stripLeadingPlus(s: string): string {
  return s.startsWith('+') ? s.slice(1) : s;
}

/**
 * Braces for one-token arguments: `\frac12` -> `\frac{1}{2}`, `\frac1{2}` and `\frac{1}2`
 * -> `\frac{1}{2}`, `\sqrt2` -> `\sqrt{2}`. A one-token argument is one letter or digit.
 */
export function fixBareArguments(s: string): string {
  if (!s.includes('\\frac') && !s.includes('\\sqrt')) return s;
  const isToken = (ch: string | undefined): ch is string => ch !== undefined && /^[A-Za-z0-9]$/.test(ch);
  // Positions where a second \frac argument starts (after a braced first one).
  const secondArgAt = new Set<number>();
  let out = '';
  let i = 0;
  while (i < s.length) {
    if (secondArgAt.has(i) && isToken(s[i])) {
      out += `{${s[i]}}`;
      i++;
      continue;
    }
    const isFrac = s.startsWith('\\frac', i);
    if ((isFrac || s.startsWith('\\sqrt', i)) && !/[A-Za-z]/.test(s[i + 5] ?? '')) {
      out += s.slice(i, i + 5);
      i += 5;
      const args = isFrac ? 2 : 1;
      for (let arg = 0; arg < args && i < s.length; arg++) {
        if (s[i] === '{') {
          if (arg + 1 < args) {
            const close = matchingBrace(s, i);
            if (close >= 0) secondArgAt.add(close + 1);
          }
          break; // the braced group is copied (and scanned) by the main loop
        }
        if (!isToken(s[i])) break;
        out += `{${s[i]}}`;
        i++;
      }
      continue;
    }
    out += s[i];
    i++;
  }
  return out;
}

/** `(113)`, `(-2.5)`: one plain number in parentheses (AIME-style `\textbf{(113) }`) -> the number. */
export function stripNumberParentheses(s: string): string {
  const m = /^\(([+-]?(?:\d+(?:\.\d*)?|\.\d+))\)$/.exec(s);
  return m === null ? s : m[1]!;
}

/**
 * Mixed numbers: `2\frac{1}{2}` -> `\frac{5}{2}` (the whole answer, integer parts, proper
 * fraction; up to 9 digits each). `2\frac{\pi}{3}` and `2\frac{3}{2}` are left alone.
 */
export function mixedNumberToFraction(s: string): string {
  const m = /^(-?)(\d{1,9})\\frac\{(\d{1,9})\}\{(\d{1,9})\}$/.exec(s);
  if (m === null) return s;
  const whole = Number(m[2]);
  const num = Number(m[3]);
  const den = Number(m[4]);
  if (whole === 0 || den === 0 || num >= den) return s;
  return `${m[1]}\\frac{${whole * den + num}}{${den}}`;
}

/** `a/b` with integers a, b (the whole answer) -> `\frac{a}{b}`. */
export function slashToFrac(s: string): string {
  const m = /^(-?)(\d+)\/(\d+)$/.exec(s);
  return m === null ? s : `${m[1]}\\frac{${m[2]}}{${m[3]}}`;
}

/**
 * Decimal numbers in canonical form: `0.50` -> `0.5`, `3.0` -> `3`, `.5` -> `0.5`.
 * Applies to every number token; tokens with two dots are left alone.
 */
export function canonicalDecimals(s: string): string {
  if (!s.includes('.')) return s;
  return s.replace(/[\d.]+/g, (tok, offset: number) => {
    const dot = tok.indexOf('.');
    if (dot < 0 || tok.indexOf('.', dot + 1) >= 0) return tok;
    let intPart = tok.slice(0, dot);
    let frac = tok.slice(dot + 1);
    if (frac.length === 0) return tok; // "3." (a trailing period is handled elsewhere)
    // A dot right after a letter or backslash (`\ldots`, `x.5`) is not a decimal point.
    const prev = offset > 0 ? s[offset - 1]! : '';
    if (intPart.length === 0 && /[A-Za-z\\]/.test(prev)) return tok;
    let end = frac.length;
    while (end > 0 && frac[end - 1] === '0') end--;
    frac = frac.slice(0, end);
    if (intPart.length === 0) intPart = '0';
    return frac.length > 0 ? `${intPart}.${frac}` : intPart;
  });
}

/** The rules in the order `normalizeMathAnswer` applies them. */
export const NORMALIZATION_RULES: readonly { name: string; apply: (s: string) => string }[] = [
  { name: 'delimiters', apply: stripDelimiters },
  { name: 'sizing', apply: stripSizing },
  { name: 'spacing', apply: stripSpacing },
  { name: 'commands', apply: canonicalCommands },
  { name: 'degrees', apply: stripDegrees },
  { name: 'percent', apply: stripPercent },
  { name: 'text', apply: stripTextCommands },
  { name: 'unitWords', apply: stripUnitWords },
  { name: 'trailingPeriod', apply: stripTrailingPeriod },
  { name: 'thousands', apply: stripThousandsSeparators },
  { name: 'whitespace', apply: stripWhitespace },
  { name: 'assignment', apply: stripVariableAssignment },
  { name: 'leadingPlus', apply: stripLeadingPlus },
  { name: 'numberParentheses', apply: stripNumberParentheses },
  { name: 'bareArguments', apply: fixBareArguments },
  { name: 'mixedNumber', apply: mixedNumberToFraction },
  { name: 'slashFraction', apply: slashToFrac },
  { name: 'decimals', apply: canonicalDecimals },
];

export interface NormalizeOptions {
  /** Names of rules to leave out (e.g. `['assignment']` keeps `y=2x+3` an equation). */
  skip?: readonly string[];
}

/** MATH-style normalization of a final answer (see README for the rules). Never throws. */
export function normalizeMathAnswer(s: string, options?: NormalizeOptions): string {
  if (typeof s !== 'string') return '';
  if (s.length > MAX_NORMALIZE_CHARS) return s.trim();
  const skip = options?.skip;
  let out = s;
  for (const rule of NORMALIZATION_RULES) {
    if (skip === undefined || !skip.includes(rule.name)) out = rule.apply(out);
  }
  return out;
}

/**
 * Free-text normalization: math normalization's wrappers removed (`$`, `\text{}`), then
 * lower case, whitespace collapsed, trailing period removed.
 */
export function normalizeTextAnswer(s: string): string {
  if (typeof s !== 'string') return '';
  if (s.length > MAX_NORMALIZE_CHARS) return s.trim().toLowerCase();
  let out = stripDelimiters(s);
  out = out.replace(/\\(?:text|textrm|textbf|textit|mbox|mathrm)\s*\{/g, '').replace(/[{}]/g, '');
  out = out.toLowerCase().replace(/\s+/g, ' ').trim();
  return stripTrailingPeriod(out).trim();
}
