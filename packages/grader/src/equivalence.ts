/**
 * Math answer equivalence as a pipeline of stages. Each stage answers true (equivalent),
 * false (certainly not) or null (cannot tell); the first non-null verdict wins, and when no
 * stage can tell the answers are not equivalent. Built-in stages, in order:
 *   1. string: equal after MATH-style normalization;
 *   2. numeric: both plain numbers, equal within a relative tolerance;
 *   3. structure: tuples, intervals, sets, lists, unions, matrices, `\pm`, equations and
 *      inequalities, compared element-wise with this same pipeline;
 *   4. symbolic: scalars parsed by the CAS (bounded input) and compared by canonical form
 *      and numeric fingerprints.
 * Plug-in stages (`options.stages`) run after these.
 */
import { normalizeMathAnswer } from './normalize.ts';
import { numbersClose, parseNumber } from './numeric.ts';
import { compareStructures, parseStructure, type Structure } from './structure.ts';
import { scalarsEquivalent } from './symbolic.ts';

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
  /**
   * Absolute tolerance of the numeric stage (default 0: only relative; `2.88e-19` and
   * `1.3e-27` differ). The symbolic stage also accepts |value| <= 1e-12 against an exact 0.
   */
  absTol?: number;
  /**
   * When true, a number with a percent sign also matches its value / 100 (`50%` ~ `0.5`).
   * Either way `50%` matches `50` (normalization strips the sign). Default false.
   */
  percent?: boolean;
  /** Answers longer than this (either side) are compared as trimmed strings only (default 1000). */
  maxLength?: number;
  /**
   * Structure and symbolic (CAS) stages (default true). False gives the string + numeric
   * pipeline only (faster; `2\sqrt2` and `\sqrt8` then differ).
   */
  symbolic?: boolean;
  /** Further stages run after the built-in ones. */
  stages?: readonly EquivalenceStage[];
}

export type ResolvedEquivalenceOptions = Required<Omit<EquivalenceOptions, 'stages'>> & {
  stages: readonly EquivalenceStage[];
};

export const DEFAULT_EQUIVALENCE_OPTIONS: ResolvedEquivalenceOptions = Object.freeze({
  relTol: 1e-6,
  absTol: 0,
  percent: false,
  maxLength: 1000,
  symbolic: true,
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

/** Nesting of element comparisons inside structures (sets of tuples of ...), bounded. */
const MAX_STRUCTURE_NESTING = 4;
let structureNesting = 0;

/** An element of a structure, prepared for the pipeline (`x=1` stays an equation inside a list). */
function prepareElement(raw: string): PreparedAnswer {
  const trimmed = raw.trim();
  return { raw: trimmed, normalized: normalizeMathAnswer(trimmed, { skip: ['assignment'] }), percent: trimmed.includes('%') };
}

function elementEquivalence(options: ResolvedEquivalenceOptions): (x: string, y: string) => boolean {
  return (x, y) => {
    if (structureNesting >= MAX_STRUCTURE_NESTING) return x === y;
    structureNesting++;
    try {
      return equivalentPrepared(prepareElement(x), prepareElement(y), options);
    } finally {
      structureNesting--;
    }
  };
}

/** `y=2x+3` normalizes to `2x+3`; against an equation the relation form is needed. */
function relationForm(p: PreparedAnswer, other: Structure): Structure | null {
  if (other.kind !== 'relation') return null;
  const s = parseStructure(normalizeMathAnswer(p.raw, { skip: ['assignment'] }));
  return s.kind === 'relation' ? s : null;
}

/**
 * Stage 3: structured answers (tuples, intervals, sets, lists, unions, matrices, `\pm`,
 * equations, inequalities) compared element-wise; null when both sides are scalars.
 */
export const structureStage: EquivalenceStage = (a, b, options) => {
  if (!options.symbolic) return null;
  let sa = parseStructure(a.normalized);
  let sb = parseStructure(b.normalized);
  if (sa.kind === 'scalar' && sb.kind === 'relation') sa = relationForm(a, sb) ?? sa;
  else if (sb.kind === 'scalar' && sa.kind === 'relation') sb = relationForm(b, sa) ?? sb;
  return compareStructures(sa, sb, elementEquivalence(options));
};

/** Stage 4: scalars through the CAS (bounded); null when either side cannot be analysed. */
export const symbolicStage: EquivalenceStage = (a, b, options) => {
  if (!options.symbolic) return null;
  return scalarsEquivalent(a.normalized, b.normalized, options.relTol, options.absTol);
};

export const BUILT_IN_STAGES: readonly EquivalenceStage[] = Object.freeze([stringStage, numericStage, structureStage, symbolicStage]);

export function resolveEquivalenceOptions(options?: EquivalenceOptions): ResolvedEquivalenceOptions {
  return {
    relTol: options?.relTol ?? DEFAULT_EQUIVALENCE_OPTIONS.relTol,
    absTol: options?.absTol ?? DEFAULT_EQUIVALENCE_OPTIONS.absTol,
    percent: options?.percent ?? DEFAULT_EQUIVALENCE_OPTIONS.percent,
    maxLength: options?.maxLength ?? DEFAULT_EQUIVALENCE_OPTIONS.maxLength,
    symbolic: options?.symbolic ?? DEFAULT_EQUIVALENCE_OPTIONS.symbolic,
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
  return equivalentPrepared(prepareAnswer(a), prepareAnswer(b), opts);
}

/** The pipeline on prepared answers (answers within `maxLength`; see `answersEquivalent`). */
export function equivalentPrepared(pa: PreparedAnswer, pb: PreparedAnswer, opts: ResolvedEquivalenceOptions): boolean {
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
