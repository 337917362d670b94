/**
 * Fuzz: random and hostile LaTeX through extraction, normalization, equivalence (with the
 * CAS on), clustering and grading. Nothing may throw, and no single call may exceed a time
 * bound. The worst times are printed (they are a few milliseconds; the bound is generous
 * because the test machine's cores are shared).
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '@empo/core';
import {
  answersEquivalent,
  clusterAnswers,
  extractAnswer,
  gradeResponse,
  normalizeMathAnswer,
  symbolicStats,
  type AnswerMode,
} from '../src/index.ts';

/** Bound for one call (ms). Measured worst cases are printed and are far below it. */
const CALL_BOUND_MS = 250;

function timed<T>(worst: { ms: number; what: string }, what: string, fn: () => T): T {
  const start = performance.now();
  const out = fn();
  const ms = performance.now() - start;
  if (ms > worst.ms) {
    worst.ms = ms;
    worst.what = what.slice(0, 80);
  }
  return out;
}

/** Random well-formed-ish LaTeX from a small grammar. */
function randomExpression(rng: Rng, depth = 0): string {
  const leaf = (): string => {
    const k = rng.int(9);
    if (k < 3) return String(rng.int(k === 0 ? 10 : 1000));
    if (k === 3) return `${rng.int(100)}.${rng.int(100)}`;
    if (k === 4) return ['x', 'y', 'a', 'n', 't'][rng.int(5)]!;
    if (k === 5) return ['\\pi', 'e', 'i', '\\infty', '\\theta'][rng.int(5)]!;
    if (k === 6) return `-${rng.int(50)}`;
    return String(rng.int(20));
  };
  if (depth > 3 || rng.int(3) === 0) return leaf();
  const a = () => randomExpression(rng, depth + 1);
  switch (rng.int(14)) {
    case 0: return `\\frac{${a()}}{${a()}}`;
    case 1: return `\\sqrt{${a()}}`;
    case 2: return `${a()}^{${a()}}`;
    case 3: return `${a()}+${a()}`;
    case 4: return `${a()}-${a()}`;
    case 5: return `${a()}\\cdot ${a()}`;
    case 6: return `(${a()})`;
    case 7: return `(${a()}, ${a()})`;
    case 8: return `[${a()}, ${a()})`;
    case 9: return `\\{${a()}, ${a()}\\}`;
    case 10: return `x = ${a()}`;
    case 11: return `${a()} \\le x < ${a()}`;
    case 12: return `\\begin{pmatrix}${a()} & ${a()} \\\\ ${a()} & ${a()}\\end{pmatrix}`;
    default: return `${a()}\\pm ${a()}`;
  }
}

/** Random edits: delete, duplicate or insert a hostile token. */
function mutate(rng: Rng, s: string): string {
  const tokens = ['{', '}', '\\', '^', '^{', '_', '\\frac', '\\sqrt', '(', ')', '\\{', '\\}', ',', '=', '<', '\\left(', '\\right)', '&', '\\\\', '10^{10^{', '$', '\\boxed{', 'e', 'i', '!', '%'];
  let out = s;
  for (let k = rng.int(4); k > 0; k--) {
    const at = rng.int(out.length + 1);
    switch (rng.int(3)) {
      case 0: out = out.slice(0, at) + out.slice(at + 1 + rng.int(3)); break;
      case 1: out = out.slice(0, at) + out.slice(at, at + 5).repeat(1 + rng.int(4)) + out.slice(at); break;
      default: out = out.slice(0, at) + tokens[rng.int(tokens.length)] + out.slice(at);
    }
  }
  return out;
}

const K100 = 100_000;

function hostileAnswers(): string[] {
  const big = '9'.repeat(20);
  return [
    '10^{10^{10}}',
    '9^{9^{9^{9}}}',
    `${'10^{'.repeat(500)}10${'}'.repeat(500)}`,
    `\\sqrt{${big}}`,
    `\\sqrt[999]{${big}}`,
    `${big}^{999}`,
    '(x+1)^{999}(x-1)^{999}(y+2)^{999}',
    '2^{999}\\cdot3^{999}\\cdot5^{999}\\cdot7^{999}',
    `\\frac{${big}}{${big}7}`,
    `${'\\sin('.repeat(9)}x${')'.repeat(9)}`,
    `${'\\frac{'.repeat(9)}1${'}{2}'.repeat(9)}`,
    `${'\\sqrt{'.repeat(9)}2${'}'.repeat(9)}`,
    `${'\\frac{'.repeat(3000)}1${'}{2}'.repeat(3000)}`,
    `${'('.repeat(5000)}x${')'.repeat(5000)}`,
    `\\{${Array.from({ length: 200 }, (_, k) => `${k}`).join(',')}\\}`,
    `${Array.from({ length: 300 }, (_, k) => `x^{${k}}`).join('+')}`,
    `${'\\pi'.repeat(60)}`,
    '0^{-1}', '\\frac{1}{0}', '\\log_0 0', '\\tan(\\pi/2)', '\\infty-\\infty', '0\\cdot\\infty', '\\ln(0)', '\\arcsin(2)', 'e^{e^{e}}', '999^{999}', '(0.1)^{999}',
    `\\begin{pmatrix}${Array.from({ length: 20 }, () => Array.from({ length: 20 }, (_, k) => String(k)).join('&')).join('\\\\')}\\end{pmatrix}`,
    `${'x'.repeat(K100)}`,
    `${'1+'.repeat(K100 / 2)}1`,
    `${'\\{'.repeat(K100 / 4)}1${'\\}'.repeat(K100 / 4)}`,
    `${'(1,'.repeat(K100 / 3)}`,
    `1${'\\pm1'.repeat(K100 / 4)}`,
    `x${'<x'.repeat(K100 / 2)}`,
    'process.exit(1)',
    'constructor.constructor("return process")()',
    '\\sum_{n=1}^{\\infty} n',
    '\\int_0^1 x\\,dx',
    '\\begin{pmatrix}1&2\\\\3\\end{pmatrix}',
    '\\begin{pmatrix}',
    '\\end{pmatrix}',
  ];
}

describe('fuzz', () => {
  it('random grammar + mutations: never throws, every call within the bound', () => {
    answersEquivalent('x+1', '1+x'); // engine start-up is not a per-call cost
    const rng = new Rng(4);
    const worst = { ms: 0, what: '' };
    const started = performance.now();
    let calls = 0;
    const modes: AnswerMode[] = ['math', 'choice', 'text'];
    for (let t = 0; t < 1500; t++) {
      const a = t % 3 === 0 ? mutate(rng, randomExpression(rng)) : randomExpression(rng);
      const b = rng.int(4) === 0 ? a : t % 2 === 0 ? mutate(rng, a) : randomExpression(rng);
      const response = `Work... so the answer is $\\boxed{${a}}$.`;
      expect(typeof timed(worst, `norm ${a}`, () => normalizeMathAnswer(a))).toBe('string');
      const eq = timed(worst, `eq ${a} | ${b}`, () => answersEquivalent(a, b));
      expect(typeof eq).toBe('boolean');
      // Symmetric where both sides are extractable.
      expect(timed(worst, `eq ${b} | ${a}`, () => answersEquivalent(b, a)), `${a} | ${b}`).toBe(eq);
      // Reflexive on non-empty answers.
      if (normalizeMathAnswer(a).length > 0) expect(answersEquivalent(a, a), a).toBe(true);
      const mode = modes[t % 3]!;
      const g = timed(worst, `grade ${a}`, () => gradeResponse(response, b, mode));
      expect(typeof g.correct).toBe('boolean');
      const extracted = timed(worst, `extract ${a}`, () => extractAnswer(response, mode));
      expect(extracted === null || typeof extracted === 'string').toBe(true);
      calls += 6;
    }
    const group = Array.from({ length: 16 }, () => randomExpression(rng));
    const c = timed(worst, 'cluster', () => clusterAnswers(group));
    expect(c.clusterIds).toHaveLength(16);
    console.log(
      `fuzz: ${calls} calls in ${(performance.now() - started).toFixed(0)} ms; slowest ${worst.ms.toFixed(2)} ms (${worst.what}); stats ${JSON.stringify(symbolicStats())}`,
    );
    expect(worst.ms).toBeLessThan(CALL_BOUND_MS);
    expect(symbolicStats().exceptions).toBe(0);
  });

  it('hostile answers (power towers, huge numbers, 100 kB, deep nesting, code): not equal to others, fast', () => {
    answersEquivalent('x+1', '1+x');
    const worst = { ms: 0, what: '' };
    const normal = ['1', 'x', '\\frac{1}{2}', '(1,2)', '\\{1\\}', 'x<1'];
    for (const h of hostileAnswers()) {
      for (const other of [...normal, h.slice(0, 900)]) {
        expect(typeof timed(worst, `eq ${h} | ${other}`, () => answersEquivalent(h, other))).toBe('boolean');
        expect(typeof timed(worst, `eq ${other} | ${h}`, () => answersEquivalent(other, h))).toBe('boolean');
      }
      for (const n of normal) expect(answersEquivalent(h, n), `${h.slice(0, 50)} | ${n}`).toBe(false);
      const g = timed(worst, `grade ${h}`, () => gradeResponse(`The answer is $\\boxed{${h}}$`, h));
      expect(typeof g.correct).toBe('boolean');
      timed(worst, `cluster ${h}`, () => clusterAnswers([h, h, '1', h.slice(0, 500), null]));
    }
    // A normal answer still grades next to hostile ones (hostile input does not zero the scores).
    expect(gradeResponse('\\boxed{10^{10^{10}}} ... the answer is \\boxed{2\\sqrt{2}}', '\\sqrt{8}').correct).toBe(true);
    expect(answersEquivalent('10^{10^{10}}', '10^{10^{10}}')).toBe(true); // string stage
    expect(answersEquivalent('10^{10^{10}}', '10^{10^{11}}')).toBe(false);
    console.log(`hostile: slowest call ${worst.ms.toFixed(2)} ms (${worst.what})`);
    expect(worst.ms).toBeLessThan(CALL_BOUND_MS);
  });
});
