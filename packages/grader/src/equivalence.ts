/**
 * Math answer equivalence as a pipeline of stages. Each stage answers true (equivalent),
 * false (certainly not) or null (cannot tell); the first non-null verdict wins, and when no
 * stage can tell the answers are not equivalent. Built-in stages: normalized string equality,
 * then numeric equality with a relative tolerance. A symbolic (CAS) comparer plugs in as a
 * further stage through `options.stages`.
 */
import { normalizeMathAnswer } from './normalize.ts';
import { numbersClose, parseNumber } from './numeric.ts';

/** One side of a comparison, prepared once. */
export interface PreparedAnswer {
  /** The answer as given, trimmed. */
  raw: string;
  /** `normalizeMathAnswer(raw)`. */
  normalized: string;
  /** Whether the raw answer carried a percent sign (`%` or `\%`). */
  percent: boolean;
}

export type Verdict = boolean | null;

/** A comparison stage: true / false decide, null passes on to the next stage. */
export type EquivalenceStage = (a: PreparedAnswer, b: PreparedAnswer, options: ResolvedEquivalenceOptions) => Verdict;

export interface EquivalenceOptions {
  /** Relative tolerance of the numeric stage (default 1e-6). */
  relTol?: number;
  /** Absolute tolerance of the numeric stage, for values near 0 (default 1e-12). */
  absTol?: number;
  /**
   * When true, a number with a percent sign also matches its value / 100 (`50%` ~ `0.5`).
   * Either way `50%` matches `50` (normalization strips the sign). Default false.
   */
  percent?: boolean;
  /** Answers longer than this (either side) are compared as trimmed strings only (default 1000). */
  maxLength?: number;
  /** Further stages run after the built-in ones (e.g. a symbolic comparer). */
  stages?: readonly EquivalenceStage[];
}

export type ResolvedEquivalenceOptions = Required<Omit<EquivalenceOptions, 'stages'>> & {
  stages: readonly EquivalenceStage[];
};

export const DEFAULT_EQUIVALENCE_OPTIONS: ResolvedEquivalenceOptions = Object.freeze({
  relTol: 1e-6,
  absTol: 1e-12,
  percent: false,
  maxLength: 1000,
  stages: Object.freeze([]) as readonly EquivalenceStage[],
});

export function prepareAnswer(raw: string): PreparedAnswer {
  const trimmed = raw.trim();
  return { raw: trimmed, normalized: normalizeMathAnswer(trimmed), percent: trimmed.includes('%') };
}

/** Stage 1: equal after normalization. Never says "not equivalent". */
export const stringStage: EquivalenceStage = (a, b) => (a.normalized === b.normalized ? true : null);

function numericCandidates(p: PreparedAnswer, percent: boolean): number[] {
  const value = parseNumber(p.normalized);
  if (value === null) return [];
  return percent && p.percent ? [value, value / 100] : [value];
}

/** Stage 2: both sides plain numbers -> equal within tolerance, else certainly not. */
export const numericStage: EquivalenceStage = (a, b, options) => {
  const xs = numericCandidates(a, options.percent);
  if (xs.length === 0) return null;
  const ys = numericCandidates(b, options.percent);
  if (ys.length === 0) return null;
  for (const x of xs) for (const y of ys) if (numbersClose(x, y, options.relTol, options.absTol)) return true;
  return false;
};

export const BUILT_IN_STAGES: readonly EquivalenceStage[] = Object.freeze([stringStage, numericStage]);

export function resolveEquivalenceOptions(options?: EquivalenceOptions): ResolvedEquivalenceOptions {
  return {
    relTol: options?.relTol ?? DEFAULT_EQUIVALENCE_OPTIONS.relTol,
    absTol: options?.absTol ?? DEFAULT_EQUIVALENCE_OPTIONS.absTol,
    percent: options?.percent ?? DEFAULT_EQUIVALENCE_OPTIONS.percent,
    maxLength: options?.maxLength ?? DEFAULT_EQUIVALENCE_OPTIONS.maxLength,
    stages: options?.stages ?? DEFAULT_EQUIVALENCE_OPTIONS.stages,
  };
}

/**
 * Whether two extracted math answers mean the same thing. Null, empty (after normalization)
 * or non-string answers are never equivalent to anything. Never throws, never evaluates code.
 */
export function answersEquivalent(a: string | null, b: string | null, options?: EquivalenceOptions): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const opts = resolveEquivalenceOptions(options);
  if (a.length > opts.maxLength || b.length > opts.maxLength) {
    const ta = a.trim();
    return ta.length > 0 && ta === b.trim();
  }
  const pa = prepareAnswer(a);
  const pb = prepareAnswer(b);
  if (pa.normalized.length === 0 || pb.normalized.length === 0) return false;
  for (const stage of BUILT_IN_STAGES) {
    const verdict = stage(pa, pb, opts);
    if (verdict !== null) return verdict;
  }
  // Plug-in stages must be total and bounded themselves; their errors are not swallowed,
  // so that a broken comparer cannot silently turn every score into 0.
  for (const stage of opts.stages) {
    const verdict = stage(pa, pb, opts);
    if (verdict !== null) return verdict;
  }
  return false;
}
