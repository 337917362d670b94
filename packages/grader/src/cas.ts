/**
 * The computer-algebra front end: `@cortex-js/compute-engine` parses (normalized) LaTeX into
 * canonical MathJSON. A synchronous CAS call cannot be interrupted in JavaScript, so every
 * input is first checked by `symbolicGate`, which bounds its size and structure (length,
 * nesting, digits, exponents, a whitelist of commands); only inputs that pass reach the
 * engine. The engine is only asked to parse and canonicalize (and, as a fallback, to compare
 * two canonical forms structurally): it never compiles or evaluates JavaScript.
 */
import { ComputeEngine, type BoxedExpression } from '@cortex-js/compute-engine';
import type { MathJson } from './evaluate.ts';

/** Longest scalar expression sent to the CAS. */
export const MAX_SYMBOLIC_CHARS = 200;
/** Deepest bracket nesting accepted. */
const MAX_NESTING = 10;
/** Longest run of digits (a number literal) accepted. */
const MAX_DIGITS = 20;
/** Longest run of digits inside an exponent (`2^{1000}` is fine, `2^{10000}` is not). */
const MAX_EXPONENT_DIGITS = 3;
/** Longest run of plain letters outside commands (`xy` is a product; `Monday` is a word). */
const MAX_LETTER_RUN = 2;
/** Most distinct variables. */
const MAX_VARIABLES = 6;
/** Most LaTeX commands (`\pi` sixty times over costs the parser tens of milliseconds). */
const MAX_COMMANDS = 24;
/** Most MathJSON nodes accepted from the parser. */
const MAX_JSON_NODES = 400;
/** The engine is replaced after this many parses (bounds the symbol tables it accumulates). */
const ENGINE_RECYCLE_PARSES = 20_000;

/** LaTeX commands the symbolic stage understands; anything else is left to string comparison. */
export const SYMBOLIC_COMMANDS: ReadonlySet<string> = new Set([
  'frac', 'sqrt', 'pi', 'cdot', 'times', 'div', 'infty', 'exp', 'ln', 'log',
  'sin', 'cos', 'tan', 'cot', 'sec', 'csc', 'arcsin', 'arccos', 'arctan', 'sinh', 'cosh', 'tanh',
  'alpha', 'beta', 'gamma', 'delta', 'theta', 'phi', 'varphi', 'lambda', 'mu', 'sigma', 'omega', 'tau', 'rho',
]);

/**
 * Why `s` must not be sent to the CAS, or null when it may. Linear scan, no regex backtracking.
 * Rejected: over `MAX_SYMBOLIC_CHARS`; characters other than letters, digits, `+-*\/^.|`, space,
 * brackets and whitelisted commands (so no `=`, `<`, `,`, `!`, `&`, `_` except `\log_`);
 * unbalanced or deeper than 10 brackets; numbers over 20 digits; power towers (`^` inside an
 * exponent) or exponents with more than 3 digits; letter runs over 2 (words); over 6 variables;
 * over 24 commands.
 */
export function symbolicGate(s: string): string | null {
  if (typeof s !== 'string' || s.length === 0) return 'empty';
  if (s.length > MAX_SYMBOLIC_CHARS) return 'too long';
  const stack: string[] = [];
  const variables = new Set<string>();
  // Depth (in the bracket stack) at which the innermost open exponent group started, or -1.
  let exponentDepth = -1;
  let letterRun = 0;
  let digitRun = 0;
  let previousCommand = '';
  let commands = 0;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const isDigit = ch >= '0' && ch <= '9';
    const isLetter = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
    digitRun = isDigit ? digitRun + 1 : 0;
    if (digitRun > (exponentDepth >= 0 ? MAX_EXPONENT_DIGITS : MAX_DIGITS)) return 'number too long';
    letterRun = isLetter ? letterRun + 1 : 0;
    if (letterRun > MAX_LETTER_RUN) return 'word';
    if (isLetter) {
      // `I(0)`, `P(A)`, `f(x)`: function notation, which the CAS would read as a product.
      if (s[i + 1] === '(' && ((ch >= 'A' && ch <= 'Z') || ch === 'f' || ch === 'g' || ch === 'h')) return 'function notation';
      if (ch !== 'e' && ch !== 'i') variables.add(ch);
      if (variables.size > MAX_VARIABLES) return 'too many variables';
      previousCommand = '';
      continue;
    }
    if (isDigit) {
      previousCommand = '';
      continue;
    }
    switch (ch) {
      case '\\': {
        let j = i + 1;
        while (j < s.length && /[A-Za-z]/.test(s[j]!)) j++;
        const name = s.slice(i + 1, j);
        if (name.length === 0) return `escape \\${s[i + 1] ?? ''}`;
        if (!SYMBOLIC_COMMANDS.has(name)) return `command \\${name}`;
        if (++commands > MAX_COMMANDS) return 'too many commands';
        previousCommand = name;
        i = j - 1;
        continue;
      }
      case '_':
        if (previousCommand !== 'log') return 'subscript';
        break;
      case '^': {
        if (exponentDepth >= 0) return 'power tower';
        const next = s[i + 1];
        if (next === '{') {
          exponentDepth = stack.length;
          stack.push('{');
          i++;
        } else if (next === undefined || next === '^' || next === '(' || next === '[' || next === '}') {
          return 'bad exponent';
        } else if (next === '\\') {
          // `^\pi`: a single command is the exponent; the command is checked on the next turn.
        } else if (next >= '0' && next <= '9') {
          // `x^2`: one digit.
          i++;
        }
        break;
      }
      case '(':
      case '[':
      case '{':
        stack.push(ch);
        if (stack.length > MAX_NESTING) return 'nesting too deep';
        break;
      case ')':
      case ']':
      case '}': {
        const open = stack.pop();
        if (open === undefined || open !== { ')': '(', ']': '[', '}': '{' }[ch]) return 'unbalanced';
        if (exponentDepth >= 0 && stack.length === exponentDepth) exponentDepth = -1;
        break;
      }
      case '+':
      case '-':
      case '*':
      case '/':
      case '.':
      case '|':
      case ' ':
        break;
      default:
        return `character ${JSON.stringify(ch)}`;
    }
    previousCommand = '';
  }
  if (stack.length > 0) return 'unbalanced';
  return null;
}

/** Counters for monitoring (a CAS that fails everywhere must be visible, not silent). */
export interface SymbolicStats {
  /** Strings sent to the CAS parser. */
  parses: number;
  /** Strings the gate kept away from the CAS. */
  gateRejections: number;
  /** Parses whose result contained errors or unsupported shapes. */
  parseFailures: number;
  /** Exceptions thrown by the CAS (caught; the comparison says "cannot tell"). */
  exceptions: number;
  /** Slowest single parse, in milliseconds. */
  maxParseMs: number;
  /** Engines created so far. */
  engines: number;
}

const stats: SymbolicStats = { parses: 0, gateRejections: 0, parseFailures: 0, exceptions: 0, maxParseMs: 0, engines: 0 };

export function symbolicStats(): SymbolicStats {
  return { ...stats };
}

export function resetSymbolicStats(): void {
  stats.parses = stats.gateRejections = stats.parseFailures = stats.exceptions = stats.maxParseMs = 0;
}

let engine: ComputeEngine | null = null;
let parsesOnEngine = 0;
/** Incremented whenever the engine is replaced: boxed expressions of older engines are stale. */
let engineGeneration = 0;

function getEngine(): ComputeEngine {
  if (engine === null || parsesOnEngine >= ENGINE_RECYCLE_PARSES) {
    engine = new ComputeEngine({ precision: 'machine' });
    parsesOnEngine = 0;
    engineGeneration++;
    stats.engines++;
  }
  return engine;
}

export interface ParsedLatex {
  /** Canonical MathJSON. */
  json: MathJson;
  /** The boxed expression (for structural comparison), valid while `generation` is current. */
  boxed: BoxedExpression;
  generation: number;
}

function jsonIsClean(json: unknown): boolean {
  let nodes = 0;
  const walk = (e: unknown): boolean => {
    if (++nodes > MAX_JSON_NODES) return false;
    if (typeof e === 'string') return e !== 'Error' && e !== 'ErrorCode' && e !== 'LatexString';
    if (typeof e === 'number') return true;
    if (Array.isArray(e)) return e.every(walk);
    if (typeof e === 'object' && e !== null) return Object.values(e).every(walk);
    return false;
  };
  return walk(json);
}

/**
 * Canonical MathJSON of a gated LaTeX string, or null when the gate rejects it, the parser
 * reports errors, or the engine throws. Never throws.
 */
export function parseLatex(s: string): ParsedLatex | null {
  if (symbolicGate(s) !== null) {
    stats.gateRejections++;
    return null;
  }
  const ce = getEngine();
  const started = performance.now();
  // The engine reports some type errors on the console instead of in the result: silence
  // them during the call and treat any such report as a failed parse.
  const saved = { log: console.log, warn: console.warn, error: console.error };
  let reported = false;
  const capture = () => {
    reported = true;
  };
  console.log = console.warn = console.error = capture;
  try {
    parsesOnEngine++;
    stats.parses++;
    const boxed = ce.parse(s);
    const json = boxed.json as MathJson;
    if (reported || !boxed.isValid || !jsonIsClean(json)) {
      stats.parseFailures++;
      return null;
    }
    return { json, boxed, generation: engineGeneration };
  } catch {
    stats.exceptions++;
    return null;
  } finally {
    console.log = saved.log;
    console.warn = saved.warn;
    console.error = saved.error;
    const ms = performance.now() - started;
    if (ms > stats.maxParseMs) stats.maxParseMs = ms;
  }
}

/** Structural equality of two canonical forms (same engine only); null when unknown. */
export function casSame(a: ParsedLatex, b: ParsedLatex): boolean | null {
  if (a.generation !== engineGeneration || b.generation !== engineGeneration) return null;
  try {
    return a.boxed.isSame(b.boxed);
  } catch {
    stats.exceptions++;
    return null;
  }
}
