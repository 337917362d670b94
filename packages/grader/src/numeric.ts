/**
 * Plain numbers in normalized answers, parsed with anchored regexes (never `eval`).
 *
 * Accepted (after `normalizeMathAnswer`): integers, decimals, scientific notation (`1.5e3`,
 * `1.5\times10^{3}`, `1.5\cdot10^3`, `10^{-3}`), simple fractions `\frac{a}{b}` and `a/b`
 * with plain numbers a, b, each optionally signed. Anything else (radicals, pi, nested
 * powers such as `10^{10^{10}}`) is not a plain number: null.
 */

/** Inputs longer than this are not parsed. */
export const MAX_NUMBER_CHARS = 200;
/** Largest decimal exponent accepted in scientific notation. */
const MAX_EXPONENT = 400;

const DECIMAL = String.raw`[+-]?(?:\d+(?:\.\d*)?|\.\d+)`;
const PLAIN = new RegExp(`^${DECIMAL}(?:[eE][+-]?\\d{1,4})?$`);
const TIMES_TEN = new RegExp(String.raw`^(${DECIMAL})(?:\\times|\\cdot|\*)10\^(?:\{([+-]?\d{1,4})\}|([+-]?\d))$`);
const POWER_OF_TEN = new RegExp(String.raw`^([+-]?)10\^(?:\{([+-]?\d{1,4})\}|(\d))$`);
const FRAC = new RegExp(String.raw`^([+-]?)\\frac\{(${DECIMAL})\}\{(${DECIMAL})\}$`);
const SLASH = new RegExp(`^(${DECIMAL})/(${DECIMAL})$`);

function finite(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

function scaled(mantissa: string, exponent: string): number | null {
  const e = Number(exponent);
  if (!Number.isInteger(e) || Math.abs(e) > MAX_EXPONENT) return null;
  return finite(Number(`${mantissa}e${e}`));
}

function ratio(sign: string, a: string, b: string): number | null {
  const den = Number(b);
  if (den === 0) return null;
  const value = Number(a) / den;
  return finite(sign === '-' ? -value : value);
}

/** The value of a normalized answer that is a plain number, else null. */
export function parseNumber(s: string): number | null {
  if (typeof s !== 'string' || s.length === 0 || s.length > MAX_NUMBER_CHARS) return null;
  if (PLAIN.test(s)) return finite(Number(s));
  let m = TIMES_TEN.exec(s);
  if (m) return scaled(m[1]!, m[2] ?? m[3]!);
  m = POWER_OF_TEN.exec(s);
  if (m) {
    const v = scaled('1', m[2] ?? m[3]!);
    return v === null ? null : m[1] === '-' ? -v : v;
  }
  m = FRAC.exec(s);
  if (m) return ratio(m[1]!, m[2]!, m[3]!);
  m = SLASH.exec(s);
  if (m) return ratio('', m[1]!, m[2]!);
  return null;
}

/** |a - b| <= max(absTol, relTol * max(|a|, |b|)). */
export function numbersClose(a: number, b: number, relTol: number, absTol: number): boolean {
  if (a === b) return true;
  const diff = Math.abs(a - b);
  return diff <= absTol || diff <= relTol * Math.max(Math.abs(a), Math.abs(b));
}
