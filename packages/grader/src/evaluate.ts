/**
 * A small, bounded numeric evaluator for MathJSON expressions (the output of the compute
 * engine's LaTeX parser), in complex double precision. It is used to fingerprint answers:
 * the value of a constant, or the values of an expression at fixed points for its free
 * variables. Only a whitelist of operators is understood; anything else is "unsupported"
 * (null). No JavaScript is generated or evaluated; work is linear in the expression size.
 */

export interface Complex {
  re: number;
  im: number;
}

/** A MathJSON expression as produced by `BoxedExpression.json`. */
export type MathJson = number | string | { num: string } | { sym: string } | { fn: MathJson[] } | MathJson[] | readonly MathJson[];

/** Largest number of nodes evaluated (inputs are tiny; this is a safety bound). */
const MAX_NODES = 4000;
/** Deepest nesting evaluated. */
const MAX_DEPTH = 64;
/** Integer powers up to this size are computed by repeated squaring (exact for integers). */
const MAX_INT_POWER = 1 << 20;

const c = (re: number, im = 0): Complex => ({ re, im });
const NAN: Complex = Object.freeze(c(Number.NaN, Number.NaN));

function add(a: Complex, b: Complex): Complex {
  return c(a.re + b.re, a.im + b.im);
}
function sub(a: Complex, b: Complex): Complex {
  return c(a.re - b.re, a.im - b.im);
}
function mul(a: Complex, b: Complex): Complex {
  if (a.im === 0 && b.im === 0) return c(a.re * b.re);
  return c(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
}
function div(a: Complex, b: Complex): Complex {
  if (a.im === 0 && b.im === 0) return b.re === 0 ? NAN : c(a.re / b.re);
  const d = b.re * b.re + b.im * b.im;
  if (d === 0) return NAN;
  return c((a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d);
}
function abs(a: Complex): number {
  return Math.hypot(a.re, a.im);
}
function exp(a: Complex): Complex {
  const m = Math.exp(a.re);
  return a.im === 0 ? c(m) : c(m * Math.cos(a.im), m * Math.sin(a.im));
}
function log(a: Complex): Complex {
  if (a.im === 0 && a.re > 0) return c(Math.log(a.re));
  return c(Math.log(abs(a)), Math.atan2(a.im, a.re));
}
function sqrt(a: Complex): Complex {
  if (a.im === 0) return a.re >= 0 ? c(Math.sqrt(a.re)) : c(0, Math.sqrt(-a.re));
  const r = abs(a);
  const re = Math.sqrt((r + a.re) / 2);
  const im = Math.sign(a.im) * Math.sqrt((r - a.re) / 2);
  return c(re, im);
}
function intPower(base: Complex, n: number): Complex {
  let result = c(1);
  let b = base;
  let k = Math.abs(n);
  while (k > 0) {
    if (k & 1) result = mul(result, b);
    b = mul(b, b);
    k = Math.floor(k / 2);
  }
  return n < 0 ? div(c(1), result) : result;
}
function power(base: Complex, e: Complex): Complex {
  if (e.im === 0 && Number.isInteger(e.re) && Math.abs(e.re) <= MAX_INT_POWER) {
    if (base.re === 0 && base.im === 0) return e.re > 0 ? c(0) : e.re === 0 ? NAN : NAN;
    return intPower(base, e.re);
  }
  if (base.im === 0 && e.im === 0 && base.re >= 0) {
    if (base.re === 0) return e.re > 0 ? c(0) : NAN;
    return c(Math.pow(base.re, e.re));
  }
  if (base.re === 0 && base.im === 0) return e.re > 0 ? c(0) : NAN;
  return exp(mul(e, log(base)));
}
/** n-th root; the real root for a negative real base and an odd integer n (`\sqrt[3]{-8}` = -2). */
function root(base: Complex, n: Complex): Complex {
  if (base.im === 0 && n.im === 0 && base.re < 0 && Number.isInteger(n.re) && Math.abs(n.re) % 2 === 1) {
    return c(-Math.pow(-base.re, 1 / n.re));
  }
  return power(base, div(c(1), n));
}
function real(fn: (x: number) => number): (a: Complex) => Complex {
  return (a) => (a.im === 0 ? c(fn(a.re)) : NAN);
}

const UNARY: Record<string, (a: Complex) => Complex> = {
  Negate: (a) => c(-a.re, -a.im),
  Sqrt: sqrt,
  Square: (a) => mul(a, a),
  Exp: exp,
  Ln: log,
  Lb: (a) => div(log(a), c(Math.LN2)),
  Lg: (a) => div(log(a), c(Math.LN10)),
  Abs: (a) => c(abs(a)),
  Sin: real(Math.sin),
  Cos: real(Math.cos),
  Tan: real(Math.tan),
  Cot: real((x) => 1 / Math.tan(x)),
  Sec: real((x) => 1 / Math.cos(x)),
  Csc: real((x) => 1 / Math.sin(x)),
  Arcsin: real(Math.asin),
  Arccos: real(Math.acos),
  Arctan: real(Math.atan),
  Sinh: real(Math.sinh),
  Cosh: real(Math.cosh),
  Tanh: real(Math.tanh),
};

const CONSTANTS: Record<string, Complex> = {
  Pi: c(Math.PI),
  ExponentialE: c(Math.E),
  ImaginaryUnit: c(0, 1),
  Half: c(0.5),
  PositiveInfinity: c(Number.POSITIVE_INFINITY),
  NegativeInfinity: c(Number.NEGATIVE_INFINITY),
  ComplexInfinity: NAN,
  NaN: NAN,
};

/** Thrown inside the evaluator when it meets something it does not handle. */
class Unsupported extends Error {}

function numberValue(text: string): Complex {
  // MathJSON number strings: "1.5", "-3", "1e400", "+Infinity", "NaN", "1.(3)" (repeating).
  if (text === '+Infinity' || text === 'Infinity') return c(Number.POSITIVE_INFINITY);
  if (text === '-Infinity') return c(Number.NEGATIVE_INFINITY);
  if (text === 'NaN') return NAN;
  const repeating = /^([+-]?\d*)\.(\d*)\((\d+)\)$/.exec(text);
  if (repeating) {
    const digits = `${repeating[1]}.${repeating[2]}${repeating[3]!.repeat(Math.ceil(20 / repeating[3]!.length))}`;
    return c(Number(digits));
  }
  const v = Number(text.replace(/n$/, ''));
  if (Number.isNaN(v)) throw new Unsupported(`number ${text}`);
  return c(v);
}

/**
 * The complex value of a MathJSON expression, with `vars` bound to values; null when the
 * expression uses an operator or symbol this evaluator does not know, or is too large.
 * Non-finite results (division by zero, overflow) are returned as NaN / Infinity parts.
 */
export function evaluateMathJson(expr: MathJson, vars: ReadonlyMap<string, Complex>): Complex | null {
  let nodes = 0;
  const ev = (e: MathJson, depth: number): Complex => {
    if (++nodes > MAX_NODES || depth > MAX_DEPTH) throw new Unsupported('too large');
    if (typeof e === 'number') return c(e);
    if (typeof e === 'string') {
      if (/^[+-]?(?:\d|Infinity|NaN)/.test(e)) return numberValue(e);
      const bound = vars.get(e);
      if (bound !== undefined) return bound;
      const constant = CONSTANTS[e];
      if (constant !== undefined) return constant;
      throw new Unsupported(`symbol ${e}`);
    }
    if (Array.isArray(e)) return evalFunction(e as readonly MathJson[], depth);
    if (typeof e === 'object' && e !== null) {
      if ('num' in e && typeof e.num === 'string') return numberValue(e.num);
      if ('sym' in e && typeof e.sym === 'string') return ev(e.sym, depth + 1);
      if ('fn' in e && Array.isArray(e.fn)) return evalFunction(e.fn, depth);
    }
    throw new Unsupported('shape');
  };
  const evalFunction = (e: readonly MathJson[], depth: number): Complex => {
    const head = e[0];
    const op = typeof head === 'string' ? head : typeof head === 'object' && head !== null && 'sym' in head ? head.sym : null;
    if (op === null) throw new Unsupported('head');
    const args = e.slice(1);
    const arg = (i: number): Complex => {
      const a = args[i];
      if (a === undefined) throw new Unsupported(`${op} arity`);
      return ev(a, depth + 1);
    };
    switch (op) {
      case 'Add': {
        let acc = c(0);
        for (let i = 0; i < args.length; i++) acc = add(acc, arg(i));
        return acc;
      }
      case 'Multiply': {
        let acc = c(1);
        for (let i = 0; i < args.length; i++) acc = mul(acc, arg(i));
        return acc;
      }
      case 'Subtract':
        return args.length === 1 ? c(-arg(0).re, -arg(0).im) : sub(arg(0), arg(1));
      case 'Divide':
      case 'Rational':
        return args.length === 1 ? div(c(1), arg(0)) : div(arg(0), arg(1));
      case 'Power':
        return power(arg(0), arg(1));
      case 'Root':
        return root(arg(0), arg(1));
      case 'Complex':
        return c(arg(0).re, arg(1).re);
      case 'Log':
        return args.length === 1 ? div(log(arg(0)), c(Math.LN10)) : div(log(arg(0)), log(arg(1)));
      case 'Delimiter':
        if (args.length === 1) return arg(0);
        throw new Unsupported('Delimiter');
      default: {
        const fn = UNARY[op];
        if (fn !== undefined && args.length === 1) return fn(arg(0));
        throw new Unsupported(op);
      }
    }
  };
  try {
    return ev(expr, 0);
  } catch (error) {
    if (error instanceof Unsupported || error instanceof RangeError) return null;
    throw error;
  }
}

/** Free symbols of a MathJSON expression (names not in the constant table), sorted. */
export function freeSymbols(expr: MathJson): string[] {
  const out = new Set<string>();
  let nodes = 0;
  const walk = (e: MathJson, isHead: boolean): void => {
    if (++nodes > MAX_NODES) return;
    if (typeof e === 'string') {
      if (!isHead && !/^[+-]?(?:\d|Infinity|NaN)/.test(e) && CONSTANTS[e] === undefined) out.add(e);
      return;
    }
    if (Array.isArray(e)) {
      (e as readonly MathJson[]).forEach((x, i) => walk(x, i === 0));
      return;
    }
    if (typeof e === 'object' && e !== null) {
      if ('sym' in e && typeof e.sym === 'string') walk(e.sym, isHead);
      else if ('fn' in e && Array.isArray(e.fn)) walk(e.fn, false);
    }
  };
  walk(expr, false);
  return [...out].sort();
}

/** Whether two complex values are equal within tolerance (infinities: same sign). */
export function complexClose(a: Complex, b: Complex, relTol: number, absTol: number): boolean {
  const finiteA = Number.isFinite(a.re) && Number.isFinite(a.im);
  const finiteB = Number.isFinite(b.re) && Number.isFinite(b.im);
  if (!finiteA || !finiteB) return a.re === b.re && a.im === b.im; // +-Infinity equal only to itself; NaN never
  const diff = Math.hypot(a.re - b.re, a.im - b.im);
  return diff <= absTol || diff <= relTol * Math.max(abs(a), abs(b));
}

export { abs as complexAbs, div as complexDiv, sub as complexSub };
