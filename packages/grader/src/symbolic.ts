/**
 * Symbolic equivalence of scalar expressions and of equations / inequalities.
 *
 * Each distinct (normalized) expression is analysed once and cached: the CAS parses it into
 * canonical MathJSON (`cas.ts`), and the evaluator (`evaluate.ts`) computes its fingerprint,
 * the value of a constant, or the values at fixed pseudo-random points for its free
 * variables (each variable gets its own values, derived from its name). Two expressions are
 * equivalent when their fingerprints agree at every point (numeric polynomial identity
 * testing: `(x+1)^2` vs `x^2+2x+1`, `2\sqrt2` vs `\sqrt8`, `e^{i\pi}` vs `-1`) and not
 * equivalent when they clearly differ at some point. When an expression uses an operator
 * the evaluator does not know, the CAS's canonical forms are compared structurally.
 */
import { casSame, parseLatex, type ParsedLatex } from './cas.ts';
import { complexClose, evaluateMathJson, freeSymbols, type Complex } from './evaluate.ts';

export type SymbolicVerdict = boolean | null;

export interface ScalarAnalysis {
  parsed: ParsedLatex;
  /** Free variables, sorted. */
  vars: string[];
  /** Values at the fingerprint points (one value for a constant); null when not evaluable. */
  values: Complex[] | null;
}

/** Points at which expressions with free variables are evaluated. */
export const FINGERPRINT_POINTS = 5;
/** Relative tolerance for expressions with variables (float error only). */
const VARIABLE_REL_TOL = 1e-9;
/** |value| below this equals an exact 0 (float error of `\sin\pi`, `e^{i\pi}+1`). */
const ZERO_SLACK = 1e-12;
/** Distinct expressions kept in the analysis cache. */
const CACHE_SIZE = 4096;

const cache = new Map<string, ScalarAnalysis | null>();

/** Clears the analysis cache (tests, or after changing engines). */
export function clearSymbolicCache(): void {
  cache.clear();
}

function hashName(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return (h >>> 0) / 2 ** 32;
}

/** The value a variable takes at fingerprint point k: in (0.5, 2.5), never an integer. */
export function variableValue(name: string, k: number): number {
  const u = (hashName(name) + 0.6180339887498949 * (k + 1) + 0.1234567 * k * k) % 1;
  const v = 0.5 + 2 * u;
  return Number.isInteger(v) ? v + 0.0137 : v;
}

/** The cached analysis of a normalized scalar expression, or null when it cannot be analysed. */
export function analyzeScalar(s: string): ScalarAnalysis | null {
  const hit = cache.get(s);
  if (hit !== undefined) {
    cache.delete(s);
    cache.set(s, hit);
    return hit;
  }
  const result = analyzeUncached(s);
  cache.set(s, result);
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value!);
  return result;
}

function analyzeUncached(s: string): ScalarAnalysis | null {
  const parsed = parseLatex(s);
  if (parsed === null) return null;
  const vars = freeSymbols(parsed.json);
  const points = vars.length === 0 ? 1 : FINGERPRINT_POINTS;
  const values: Complex[] = [];
  for (let k = 0; k < points; k++) {
    const bindings = new Map<string, Complex>();
    for (const v of vars) bindings.set(v, { re: variableValue(v, k), im: 0 });
    const value = evaluateMathJson(parsed.json, bindings);
    // Unsupported, or an overflow (`10^{999}`, `1e400`): floats cannot tell such values apart.
    if (value === null || (isInfinite(value) && !s.includes('\\infty'))) return { parsed, vars, values: null };
    values.push(value);
  }
  return { parsed, vars, values };
}

function isFiniteComplex(z: Complex): boolean {
  return Number.isFinite(z.re) && Number.isFinite(z.im);
}

function isInfinite(z: Complex): boolean {
  return z.re === Infinity || z.re === -Infinity || z.im === Infinity || z.im === -Infinity;
}

function isNaNComplex(z: Complex): boolean {
  return Number.isNaN(z.re) || Number.isNaN(z.im);
}

/**
 * Whether two normalized scalar expressions are equal: true (fingerprints agree, or the
 * canonical forms are identical), false (they clearly differ somewhere), null (cannot tell:
 * not parseable within the bounds, or not evaluable and not identical).
 */
export function scalarsEquivalent(a: string, b: string, relTol: number, absTol: number): SymbolicVerdict {
  const A = analyzeScalar(a);
  if (A === null) return null;
  const B = analyzeScalar(b);
  if (B === null) return null;
  if (A.values === null || B.values === null) return casSame(A.parsed, B.parsed) === true ? true : null;
  const constant = A.vars.length === 0 && B.vars.length === 0;
  const rel = constant ? relTol : Math.min(relTol, VARIABLE_REL_TOL);
  const n = Math.max(A.values.length, B.values.length);
  let compared = 0;
  for (let k = 0; k < n; k++) {
    const x = A.values[k % A.values.length]!;
    const y = B.values[k % B.values.length]!;
    if (isNaNComplex(x) && isNaNComplex(y)) continue; // undefined on both sides here
    if (isNaNComplex(x) || isNaNComplex(y)) return false;
    // The absolute slack applies only against an exact 0 (`e^{i\\pi}+1` vs `0`): tiny
    // physical constants (`2.88e-19` vs `1.3e-27`) must still differ.
    const exactZero = (x.re === 0 && x.im === 0) || (y.re === 0 && y.im === 0);
    if (!complexClose(x, y, rel, exactZero ? Math.max(absTol, ZERO_SLACK) : absTol)) return false;
    compared++;
  }
  return compared > 0 ? true : null;
}

/** Free variables of a normalized scalar, or null when it cannot be analysed. */
export function scalarVariables(s: string): string[] | null {
  return analyzeScalar(s)?.vars ?? null;
}

/**
 * Whether `lhsA relA rhsA` and `lhsB relB rhsB` (relations already turned so that both read
 * `<`, `\le`, `=` or `\ne`) describe the same set: the differences rhs - lhs must be
 * proportional at every fingerprint point, with a nonzero constant factor (positive for
 * inequalities). Null when either side cannot be analysed or has no variables.
 */
export function relationsEquivalent(
  diffA: string,
  diffB: string,
  inequality: boolean,
): SymbolicVerdict {
  const A = analyzeScalar(diffA);
  const B = analyzeScalar(diffB);
  if (A === null || B === null || A.values === null || B.values === null) return null;
  if (A.vars.length === 0 || B.vars.length === 0) return null;
  const n = Math.max(A.values.length, B.values.length);
  let ratio: Complex | null = null;
  for (let k = 0; k < n; k++) {
    const x = A.values[k % A.values.length]!;
    const y = B.values[k % B.values.length]!;
    if (!isFiniteComplex(x) || !isFiniteComplex(y)) {
      if (isNaNComplex(x) && isNaNComplex(y)) continue;
      return false;
    }
    const xZero = Math.hypot(x.re, x.im) <= 1e-12;
    const yZero = Math.hypot(y.re, y.im) <= 1e-12;
    if (xZero || yZero) {
      if (xZero !== yZero) return false;
      continue;
    }
    const d = y.re * y.re + y.im * y.im;
    const r: Complex = { re: (x.re * y.re + x.im * y.im) / d, im: (x.im * y.re - x.re * y.im) / d };
    if (ratio === null) ratio = r;
    else if (!complexClose(ratio, r, VARIABLE_REL_TOL * 10, 1e-12)) return false;
  }
  if (ratio === null) return null;
  if (inequality && !(ratio.re > 0 && Math.abs(ratio.im) <= 1e-12 * Math.abs(ratio.re))) return false;
  return true;
}
