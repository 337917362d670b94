import { describe, expect, it } from 'vitest';
import {
  answersEquivalent as eq,
  evaluateMathJson,
  freeSymbols,
  parseLatex,
  parseStructure,
  scalarsEquivalent,
  symbolicGate,
  symbolicStats,
} from '../src/index.ts';

/** [a, b] pairs that must be equivalent, and pairs that must not, per family. */
const FAMILIES: Record<string, { same: [string, string][]; different: [string, string][] }> = {
  fractions: {
    same: [
      ['\\frac{2}{4}', '\\frac{1}{2}'],
      ['\\frac{6}{4}', '1.5'],
      ['\\frac{x}{2}', '0.5x'],
      ['\\frac{1}{\\frac{1}{3}}', '3'],
      ['\\dfrac{7}{2}', '3\\frac12'],
      ['-\\frac{2}{3}', '\\frac{-2}{3}'],
      ['\\frac{a+b}{2}', '\\frac{b}{2}+\\frac{a}{2}'],
    ],
    different: [
      ['\\frac{1}{3}', '0.33'],
      ['\\frac{2}{3}', '\\frac{3}{2}'],
      ['\\frac{x}{2}', '2x'],
      ['\\frac{1}{2}', '-\\frac{1}{2}'],
    ],
  },
  radicals: {
    same: [
      ['2\\sqrt2', '\\sqrt8'],
      ['\\sqrt{4}', '2'],
      ['5\\sqrt{2}', '\\sqrt{50}'],
      ['\\frac{\\sqrt{3}}{2}', '\\frac{1}{2}\\sqrt{3}'],
      ['\\frac{1}{\\sqrt{2}}', '\\frac{\\sqrt{2}}{2}'],
      ['\\sqrt[3]{-8}', '-2'],
      ['\\sqrt[3]{27}', '3'],
      ['2^{\\frac{1}{2}}', '\\sqrt{2}'],
    ],
    different: [
      ['2\\sqrt{2}', '\\sqrt{6}'],
      ['\\frac{\\sqrt{3}}{2}', '0.866'],
      ['\\sqrt{2}', '\\sqrt{3}'],
      ['3\\sqrt{2}', '2\\sqrt{3}'],
    ],
  },
  pi: {
    same: [
      ['\\pi/2', '\\frac{\\pi}{2}'],
      ['2\\pi r', '2r\\pi'],
      ['\\frac{3\\pi}{4}', '0.75\\pi'],
      ['4\\pi', '\\pi\\cdot4'],
      ['2\\pi', '6.283185307'], // a 10-digit decimal is within the 1e-6 relative tolerance
    ],
    different: [
      ['\\frac{\\pi}{3}', '\\frac{\\pi}{4}'],
      ['\\pi', '3.14'],
      ['2\\pi', '\\pi^2'],
      ['\\pi r^2', '2\\pi r'],
    ],
  },
  sets: {
    same: [
      ['\\{1,2\\}', '\\{2,1\\}'],
      ['\\{1,2,2\\}', '\\{1,2\\}'],
      ['\\{\\frac12, 3\\}', '\\{3, 0.5\\}'],
      ['1,2', '2,1'],
      ['1, -2', '-2,1'],
      ['\\{1,2\\}', '1,2'],
      ['1\\pm\\sqrt2', '1+\\sqrt2, 1-\\sqrt2'],
      ['\\pm 3', '3,-3'],
      ['\\pm1, \\pm2', '1,-1,2,-2'],
      ['\\frac{1\\pm\\sqrt{5}}{2}', '\\frac{1-\\sqrt5}{2}, \\frac{1+\\sqrt5}{2}'],
      ['\\emptyset', '\\{\\}'],
      ['x=1,y=2', 'y=2,x=1'],
    ],
    different: [
      ['\\{1,2\\}', '\\{1,3\\}'],
      ['\\{1,2\\}', '\\{1,2,3\\}'],
      ['1,2', '1'],
      ['x=1,y=2', 'x=2,y=1'],
      ['\\{1,2\\}', '(1,2)'],
    ],
  },
  intervals: {
    same: [
      ['[1,2)', '[1, 2)'],
      ['[\\frac12,1]', '[0.5,1]'],
      ['(-\\infty,3]', 'x\\le3'],
      ['[2,\\infty)', 'x\\ge2'],
      ['[2,\\infty]', '[2,\\infty)'], // bracket slip at infinity
      ['1<x\\le5', '(1,5]'],
      ['x\\in(0,1)', '(0,1)'],
      ['(1,2)\\cup(3,4)', '(3,4)\\cup(1,2)'],
      ['(-\\infty, 0) \\cup (0, \\infty)', '(-\\infty,0)\\cup(0,\\infty)'],
    ],
    different: [
      ['[1,2)', '(1,2)'],
      ['[1,2]', '[1,2)'],
      ['(-\\infty,3]', 'x<3'],
      ['(1,2)\\cup(3,4)', '(1,2)\\cup(3,5)'],
      ['[0,1]', '[0,2]'],
    ],
  },
  tuples: {
    same: [
      ['(1,2)', '(1, 2)'],
      ['(\\frac12, \\sqrt{4})', '(0.5, 2)'],
      ['\\left( 3, \\frac{\\pi}{2} \\right)', '(3,\\frac{\\pi}{2})'],
      ['(1,2,3)', '(1,2,3.0)'],
      ['(2x, x^2)', '(x+x, x\\cdot x)'],
    ],
    different: [
      ['(1,2)', '(2,1)'],
      ['(1,2,3)', '(1,2)'],
      ['(1,2)', '[1,2]'],
      ['(3,\\frac{\\pi}{2})', '(3,\\frac{\\pi}{3})'],
    ],
  },
  matrices: {
    same: [
      ['\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}', '\\begin{bmatrix}1&2\\\\3&\\sqrt{16}\\end{bmatrix}'],
      ['\\begin{pmatrix} \\frac12 \\\\ -1 \\end{pmatrix}', '\\begin{pmatrix}0.5\\\\-1\\end{pmatrix}'],
      ['\\begin{pmatrix}1&0\\\\0&1\\\\\\end{pmatrix}', '\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}'],
    ],
    different: [
      ['\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}', '\\begin{pmatrix}1&2\\\\4&3\\end{pmatrix}'],
      ['\\begin{pmatrix}1\\\\2\\end{pmatrix}', '\\begin{pmatrix}1&2\\end{pmatrix}'],
      ['\\begin{pmatrix}1\\\\2\\end{pmatrix}', '(1,2)'],
    ],
  },
  complex: {
    same: [
      ['1+i', 'i+1'],
      ['\\frac{1+i\\sqrt3}{2}', '\\frac12+\\frac{\\sqrt3}{2}i'],
      ['e^{i\\pi}', '-1'],
      ['(1+i)^2', '2i'],
      ['\\sqrt{-4}', '2i'],
      ['\\frac{1}{i}', '-i'],
    ],
    different: [
      ['1+i', '1-i'],
      ['2i', '-2i'],
      ['1+i', '1'],
      ['i', '1'],
    ],
  },
  equations: {
    same: [
      ['y=2x+3', '2x-y+3=0'],
      ['x+y=1', 'y=1-x'],
      ['2x+4y=6', 'x+2y=3'],
      ['x^2+y^2=1', 'y^2+x^2-1=0'],
      ['3=x', 'x=3'],
      ['x = 3', '3'],
    ],
    different: [
      ['y=2x+3', 'y=3x+2'],
      ['x^2=4', 'x=2'],
      ['x+y=1', 'x-y=1'],
      ['y=2x+3', '2x+3'.replace('2x', '3x')],
    ],
  },
  inequalities: {
    same: [
      ['x<3', '3>x'],
      ['x\\geq 2', 'x \\ge 2'],
      ['x\\ge2', '2\\le x'],
      ['-1<x<1', '1>x>-1'],
      ['x+y<1', '1-x-y>0'],
      ['2x\\le 6', 'x\\le3'],
    ],
    different: [
      ['x<3', 'x\\le3'],
      ['x<3', 'x>3'],
      ['x+y<1', 'x+y>1'],
      ['2x\\le 6', '-x\\le -3'],
      ['x<3', 'y<3'],
    ],
  },
  polynomials: {
    same: [
      ['(x+1)^2', 'x^2+2x+1'],
      ['x^2-1', '(x-1)(x+1)'],
      ['\\sin^2x+\\cos^2x', '1'],
      ['2^{10}', '1024'],
      ['\\log_2 8', '3'],
      ['x^2+33x-33', '-33+33x+x^2'],
    ],
    different: [
      ['x^2-1', '(x-1)^2'],
      ['(x+1)^2', 'x^2+2x+2'],
      ['x+1', 'y+1'],
      ['a', 'b'],
    ],
  },
};

describe('equivalence families (true and false pairs)', () => {
  for (const [family, { same, different }] of Object.entries(FAMILIES)) {
    it(`${family}: equivalent pairs`, () => {
      for (const [a, b] of same) {
        expect(eq(a, b), `${a} ~ ${b}`).toBe(true);
        expect(eq(b, a), `${b} ~ ${a}`).toBe(true);
      }
    });
    it(`${family}: different pairs`, () => {
      for (const [a, b] of different) {
        expect(eq(a, b), `${a} !~ ${b}`).toBe(false);
        expect(eq(b, a), `${b} !~ ${a}`).toBe(false);
      }
    });
  }
  it('symbolic: false turns the structure and CAS stages off', () => {
    expect(eq('2\\sqrt2', '\\sqrt8', { symbolic: false })).toBe(false);
    expect(eq('\\{1,2\\}', '\\{2,1\\}', { symbolic: false })).toBe(false);
    expect(eq('\\frac12', '0.5', { symbolic: false })).toBe(true);
  });
  it('keeps physical constants apart (no absolute slack between small numbers)', () => {
    expect(eq('2.88e-19', '1.325e-27')).toBe(false);
    expect(eq('0', '4.6e-24')).toBe(false);
    expect(eq('1.6\\times10^{-19}', '1.6e-19')).toBe(true);
    expect(eq('e^{i\\pi}+1', '0')).toBe(true); // float noise against an exact 0
  });
  it('does not read words or function notation as products', () => {
    expect(eq('\\text{Monday}', '\\text{Mondya}')).toBe(false);
    expect(eq('I(0)', '0')).toBe(false);
    expect(eq('f(x)', 'xf')).toBe(false);
  });
});

describe('symbolicGate', () => {
  it('admits ordinary answers', () => {
    for (const s of ['\\frac{\\sqrt{3}}{2}', 'x^2+2x+1', '2^{100}', '\\sin^2x', '\\log_2 8', 'e^{i\\pi}', '|x-1|', '\\sqrt[3]{2}', '(x+1)(x-1)']) {
      expect(symbolicGate(s), s).toBeNull();
    }
  });
  it('rejects what could make the CAS slow or wrong', () => {
    const cases: [string, string][] = [
      ['10^{10^{10}}', 'power tower'],
      ['2^{1000}', 'number too long'],
      ['9'.repeat(21), 'number too long'],
      ['x'.repeat(3), 'word'],
      ['Monday', 'word'],
      ['\\binom{5}{2}', 'command \\binom'],
      ['\\operatorname{foo}', 'command \\operatorname'],
      ['5!', 'character "!"'],
      ['a_1', 'subscript'],
      ['x=1', 'character "="'],
      ['(1,2)', 'character ","'],
      ['('.repeat(11) + ')'.repeat(11), 'nesting too deep'],
      ['(x', 'unbalanced'],
      ['x)', 'unbalanced'],
      ['x'.repeat(1) + '+1'.repeat(100), 'too long'],
      ['I(0)', 'function notation'],
      ['a+b+c+d+f+g+h', 'too many variables'],
      ['\\pi'.repeat(25), 'too many commands'],
    ];
    for (const [s, reason] of cases) expect(symbolicGate(s), s).toBe(reason);
  });
});

describe('CAS front end and evaluator', () => {
  it('parses LaTeX into canonical MathJSON', () => {
    expect(parseLatex('\\frac{1}{2}')?.json).toEqual(['Rational', 1, 2]);
    expect(parseLatex('x^2+2x+1')?.json).toEqual(['Add', ['Power', 'x', 2], ['Multiply', 2, 'x'], 1]);
    expect(parseLatex('\\frac{}{')).toBeNull();
    expect(parseLatex('10^{10^{10}}')).toBeNull();
  });
  it('evaluates MathJSON in complex arithmetic', () => {
    const none = new Map();
    expect(evaluateMathJson(['Add', 1, ['Complex', 0, 1]], none)).toEqual({ re: 1, im: 1 });
    expect(evaluateMathJson(['Sqrt', -4], none)).toEqual({ re: 0, im: 2 });
    expect(evaluateMathJson(['Root', -8, 3], none)?.re).toBeCloseTo(-2, 12);
    expect(evaluateMathJson(['Power', 'x', 2], new Map([['x', { re: 3, im: 0 }]]))).toEqual({ re: 9, im: 0 });
    expect(evaluateMathJson(['Gamma', 3], none)).toBeNull(); // unknown operator
    expect(evaluateMathJson('y', none)).toBeNull(); // unbound symbol
    expect(freeSymbols(['Add', ['Multiply', 2, 'x'], 'Pi', 'y'])).toEqual(['x', 'y']);
  });
  it('compares scalars: true, false, or null when it cannot tell', () => {
    expect(scalarsEquivalent('2\\sqrt{2}', '\\sqrt{8}', 1e-6, 0)).toBe(true);
    expect(scalarsEquivalent('2\\sqrt{2}', '\\sqrt{9}', 1e-6, 0)).toBe(false);
    expect(scalarsEquivalent('\\binom{5}{2}', '10', 1e-6, 0)).toBeNull();
    expect(scalarsEquivalent('10^{999}', '10^{998}', 1e-6, 0)).toBeNull(); // overflow: cannot tell
  });
  it('reports its activity', () => {
    const before = symbolicStats();
    parseLatex('q^2+7');
    parseLatex('Monday');
    const after = symbolicStats();
    expect(after.parses).toBeGreaterThan(before.parses);
    expect(after.gateRejections).toBeGreaterThan(before.gateRejections);
    expect(after.exceptions).toBe(0);
  });
});

describe('parseStructure', () => {
  it('recognizes each kind', () => {
    expect(parseStructure('(1,2]')).toEqual({ kind: 'tuple', open: '(', close: ']', items: ['1', '2'] });
    expect(parseStructure('\\{1,2\\}')).toEqual({ kind: 'set', items: ['1', '2'] });
    expect(parseStructure('1,2')).toEqual({ kind: 'list', items: ['1', '2'] });
    expect(parseStructure('(1,2)\\cup(3,4)')).toEqual({ kind: 'union', parts: ['(1,2)', '(3,4)'] });
    expect(parseStructure('\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}')).toEqual({ kind: 'matrix', rows: [['1', '2'], ['3', '4']] });
    expect(parseStructure('1<x\\le5')).toEqual({ kind: 'relation', terms: ['1', 'x', '5'], ops: ['<', '\\le'] });
    expect(parseStructure('1\\pm\\sqrt{2}')).toEqual({ kind: 'list', items: ['1+\\sqrt{2}', '1-\\sqrt{2}'] });
    expect(parseStructure('\\pm3')).toEqual({ kind: 'list', items: ['3', '-3'] });
    expect(parseStructure('(x+1)')).toEqual({ kind: 'scalar', text: 'x+1' });
    expect(parseStructure('(x+1)(x-1)')).toEqual({ kind: 'scalar', text: '(x+1)(x-1)' });
    expect(parseStructure('(1,2')).toEqual({ kind: 'scalar', text: '(1,2' }); // unbalanced
  });
});

describe('never evaluates JavaScript', () => {
  it('does not call eval or the Function constructor while comparing', () => {
    const calls: string[] = [];
    const realFunction = globalThis.Function;
    const realEval = globalThis.eval;
    const trap = new Proxy(realFunction, {
      construct(target, args) {
        calls.push(`new Function(${args.join(',')})`);
        return Reflect.construct(target, args);
      },
      apply(target, thisArg, args) {
        calls.push(`Function(${args.join(',')})`);
        return Reflect.apply(target, thisArg, args);
      },
    });
    globalThis.Function = trap as FunctionConstructor;
    globalThis.eval = ((code: string) => {
      calls.push(`eval(${code})`);
      return undefined;
    }) as typeof eval;
    try {
      for (const [a, b] of [
        ['process.exit(1)', 'x'],
        ['\\sum_{n=1}^{10} n', '55'],
        ['\\int_0^1 x dx', '\\frac12'],
        ['(x+1)^2', 'x^2+2x+1'],
        ['y=2x+3', '2x-y+3=0'],
        ['\\{1,2\\}', '\\{2,1\\}'],
      ]) {
        eq(a!, b!);
      }
    } finally {
      globalThis.Function = realFunction;
      globalThis.eval = realEval;
    }
    expect(calls).toEqual([]);
  });
});
