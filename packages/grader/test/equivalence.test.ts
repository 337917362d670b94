import { describe, expect, it } from 'vitest';
import { answersEquivalent as eq, parseNumber, type EquivalenceStage } from '../src/index.ts';

describe('parseNumber', () => {
  it('parses plain numbers', () => {
    expect(parseNumber('42')).toBe(42);
    expect(parseNumber('-3.5')).toBe(-3.5);
    expect(parseNumber('0.5')).toBe(0.5);
    expect(parseNumber('1.5e3')).toBe(1500);
    expect(parseNumber('1.5\\times10^{3}')).toBe(1500);
    expect(parseNumber('2\\cdot10^{-2}')).toBeCloseTo(0.02, 15);
    expect(parseNumber('10^{6}')).toBe(1e6);
    expect(parseNumber('\\frac{1}{4}')).toBe(0.25);
    expect(parseNumber('-\\frac{3}{4}')).toBe(-0.75);
    expect(parseNumber('\\frac{-3}{4}')).toBe(-0.75);
    expect(parseNumber('3/4')).toBe(0.75);
  });
  it('rejects everything else', () => {
    for (const s of ['', 'x', '\\sqrt{2}', '\\pi', '10^{10^{10}}', '1e99999', '\\frac{1}{0}', '1/0', '(1,2)', '2x', '1.2.3', '1,000']) {
      expect(parseNumber(s), s).toBeNull();
    }
  });
});

describe('answersEquivalent', () => {
  it('accepts normalized-equal answers', () => {
    expect(eq('\\dfrac{1}{2}', '\\frac12')).toBe(true);
    expect(eq('x = 3', '3')).toBe(true);
    expect(eq('[-2, 2]', '\\left[-2,2\\right]')).toBe(true);
    expect(eq('10\\text{ inches}', '10')).toBe(true);
    expect(eq('x^2+33x-33', 'x^2 + 33x - 33')).toBe(true);
  });
  it('accepts numerically equal answers', () => {
    expect(eq('\\frac{1}{2}', '0.5')).toBe(true);
    expect(eq('1,000', '1000')).toBe(true);
    expect(eq('3.0', '3')).toBe(true);
    expect(eq('1/2', '0.5')).toBe(true);
    expect(eq('-\\frac{1}{2}', '-0.5')).toBe(true);
    expect(eq('1.5\\times10^{3}', '1500')).toBe(true);
    expect(eq('1e3', '1000')).toBe(true);
    expect(eq('50\\%', '50')).toBe(true);
    expect(eq('\\$18', '18')).toBe(true);
    expect(eq('1000000', '1000000.0000001')).toBe(true); // within 1e-6 relative
  });
  it('rejects different answers', () => {
    expect(eq('2', '3')).toBe(false);
    expect(eq('0.333', '\\frac13')).toBe(false);
    expect(eq('-49', '49')).toBe(false);
    expect(eq('(1,2)', '(2,1)')).toBe(false);
    expect(eq('x-2', 'x+2')).toBe(false);
    expect(eq('1', '1.001')).toBe(false);
    expect(eq('0', '1e-9')).toBe(false);
  });
  it('percent matches value / 100 only when asked', () => {
    expect(eq('50\\%', '0.5')).toBe(false);
    expect(eq('50\\%', '0.5', { percent: true })).toBe(true);
    expect(eq('50%', '50', { percent: true })).toBe(true);
  });
  it('has a configurable tolerance', () => {
    expect(eq('1', '1.001', { relTol: 1e-2 })).toBe(true);
    expect(eq('100', '100.01', { relTol: 1e-6 })).toBe(false);
  });
  it('null, empty and non-strings are never equivalent', () => {
    expect(eq(null, null)).toBe(false);
    expect(eq(null, '1')).toBe(false);
    expect(eq('', '')).toBe(false);
    expect(eq('$ $', '$$')).toBe(false);
    expect(eq(5 as unknown as string, '5')).toBe(false);
  });
  it('compares long inputs as trimmed strings only', () => {
    const a = '1'.repeat(1001);
    expect(eq(a, ` ${a} `)).toBe(true);
    expect(eq(`${a}.0`, `${a}`)).toBe(false);
    expect(eq('1,000', '1000', { maxLength: 3 })).toBe(false);
  });
  it('runs plug-in stages after the built-in ones', () => {
    const calls: string[] = [];
    const sqrtFour: EquivalenceStage = (a, b) => {
      calls.push(`${a.normalized}|${b.normalized}`);
      const pair = new Set([a.normalized, b.normalized]);
      return pair.has('\\sqrt{4}') && pair.has('2') ? true : null;
    };
    const plain = { symbolic: false } as const;
    expect(eq('\\sqrt{4}', '2', plain)).toBe(false);
    expect(eq('\\sqrt{4}', '2', { ...plain, stages: [sqrtFour] })).toBe(true);
    expect(eq('\\sqrt4', 'x', { ...plain, stages: [sqrtFour] })).toBe(false);
    // Decided earlier: the plug-in is not consulted.
    calls.length = 0;
    expect(eq('2', '3', { stages: [sqrtFour] })).toBe(false);
    expect(eq('2', '2.0', { stages: [sqrtFour] })).toBe(true);
    expect(calls).toEqual([]);
  });
  it('does not swallow a failing plug-in stage', () => {
    const broken: EquivalenceStage = () => {
      throw new Error('CAS down');
    };
    expect(() => eq('\\sqrt{4}', '2', { symbolic: false, stages: [broken] })).toThrow('CAS down');
    // Reached only when the built-in stages cannot tell.
    expect(() => eq('\\text{foo}', '\\text{bar}', { stages: [broken] })).toThrow('CAS down');
  });
});
