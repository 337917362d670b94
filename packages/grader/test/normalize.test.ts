import { describe, expect, it } from 'vitest';
import { MAX_NORMALIZE_CHARS, NORMALIZATION_RULES, normalizeMathAnswer as n, normalizeTextAnswer } from '../src/index.ts';

// Each rule: cases it must change (true) and cases it must leave alone (false).
describe('normalizeMathAnswer rules', () => {
  it('strips $ and math delimiters', () => {
    expect(n('$5$')).toBe('5');
    expect(n('\\$5')).toBe('5');
    expect(n('\\(x^2\\)')).toBe('x^2');
    expect(n('[1,2]')).toBe('[1,2]'); // interval brackets stay
  });
  it('strips \\left / \\right but not \\rightarrow', () => {
    expect(n('\\left( 1, 2 \\right)')).toBe('(1,2)');
    expect(n('\\left.\\frac{1}{2}\\right|')).toBe('\\frac{1}{2}|');
    expect(n('x \\rightarrow 0')).toBe('x\\rightarrow0');
    expect(n('\\leftarrow')).toBe('\\leftarrow');
  });
  it('strips spacing commands \\! \\, \\; \\quad and spaces', () => {
    expect(n('1\\!2')).toBe('12');
    expect(n('a\\,b\\;c\\quad d')).toBe('abcd');
    expect(n('  x  +  1 ')).toBe('x+1');
    expect(n('a\\\\b')).toBe('a\\\\b'); // a line break is not a spacing command
  });
  it('maps \\dfrac and \\tfrac to \\frac', () => {
    expect(n('\\dfrac{1}{2}')).toBe('\\frac{1}{2}');
    expect(n('\\tfrac{1}{2}')).toBe('\\frac{1}{2}');
    expect(n('\\dfracx')).toBe('\\dfracx'); // another command name
  });
  it('unwraps \\text / \\mbox and drops trailing unit words', () => {
    expect(n('10\\text{ inches}')).toBe('10');
    expect(n('5\\text{ cm}^2')).toBe('5');
    expect(n('12\\mbox{ dollars}')).toBe('12');
    expect(n('\\text{Monday}')).toBe('Monday');
    expect(n('\\mbox{(B)}')).toBe('(B)');
    expect(n('x\\text{ and }y')).toBe('xandy'); // not trailing: unwrapped, not dropped
    expect(n('5\\text{ cm}+1')).toBe('5cm+1');
    expect(n('\\text{unbalanced')).toBe('\\text{unbalanced');
  });
  it('drops plain unit words after a plain number', () => {
    expect(n('12 dollars')).toBe('12');
    expect(n('3 square feet')).toBe('3');
    expect(n('2 pi')).toBe('2pi');
    expect(n('2 and 3')).toBe('2and3');
    expect(n('5 x')).toBe('5x');
  });
  it('strips degree marks', () => {
    expect(n('90^\\circ')).toBe('90');
    expect(n('90^{\\circ}')).toBe('90');
    expect(n('90°')).toBe('90');
    expect(n('\\circ')).toBe('\\circ');
  });
  it('strips percent signs', () => {
    expect(n('50\\%')).toBe('50');
    expect(n('50%')).toBe('50');
    expect(n('50')).toBe('50');
  });
  it('strips a trailing period', () => {
    expect(n('5.')).toBe('5');
    expect(n('5 .')).toBe('5');
    expect(n('5.5')).toBe('5.5');
  });
  it('removes thousands separators, not tuple commas', () => {
    expect(n('1,000')).toBe('1000');
    expect(n('12,345,678')).toBe('12345678');
    expect(n('-1,234.5')).toBe('-1234.5');
    expect(n('1{,}000')).toBe('1000');
    expect(n('1\\,000')).toBe('1000');
    expect(n('(1,2)')).toBe('(1,2)');
    expect(n('(1,000)')).toBe('(1,000)');
    expect(n('1, 234')).toBe('1,234'); // a list of two answers
    expect(n('1,23')).toBe('1,23');
    expect(n('1234,567')).toBe('1234,567');
  });
  it('takes the right side of x = 3 with a single variable', () => {
    expect(n('x = 3')).toBe('3');
    expect(n('k=\\frac{1}{2}')).toBe('\\frac{1}{2}');
    expect(n('a_1 = 5')).toBe('5');
    expect(n('\\theta = 30^\\circ')).toBe('30');
    expect(n('x \\in [1,2]')).toBe('[1,2]');
    expect(n('f(x) = 3')).toBe('f(x)=3');
    expect(n('xy = 3')).toBe('xy=3');
    expect(n('x = y = 3')).toBe('x=y=3');
  });
  it('strips a leading +', () => {
    expect(n('+5')).toBe('5');
    expect(n('5+1')).toBe('5+1');
  });
  it('braces one-token arguments of \\frac and \\sqrt', () => {
    expect(n('\\frac12')).toBe('\\frac{1}{2}');
    expect(n('\\frac1{2}')).toBe('\\frac{1}{2}');
    expect(n('\\frac{1}2')).toBe('\\frac{1}{2}');
    expect(n('\\frac{\\frac12}{3}')).toBe('\\frac{\\frac{1}{2}}{3}');
    expect(n('\\sqrt2')).toBe('\\sqrt{2}');
    expect(n('\\frac{12}{5}')).toBe('\\frac{12}{5}');
    expect(n('\\sqrt[3]{2}')).toBe('\\sqrt[3]{2}');
  });
  it('turns an integer a/b into \\frac{a}{b}', () => {
    expect(n('1/2')).toBe('\\frac{1}{2}');
    expect(n('-3/4')).toBe('-\\frac{3}{4}');
    expect(n('x/2')).toBe('x/2');
  });
  it('writes decimals canonically', () => {
    expect(n('0.50')).toBe('0.5');
    expect(n('3.0')).toBe('3');
    expect(n('.5')).toBe('0.5');
    expect(n('-.5')).toBe('-0.5');
    expect(n('(1.50, 2.0)')).toBe('(1.5,2)');
    expect(n('100')).toBe('100'); // zeros of integers stay
    expect(n('1.2.3')).toBe('1.2.3');
  });
  it('combines rules', () => {
    expect(n('$\\$1,000.00$')).toBe('1000');
    expect(n('$x = \\dfrac{1}{2}$.')).toBe('\\frac{1}{2}');
    expect(n('\\left[ -2, 2 \\right]')).toBe('[-2,2]');
  });
  it('maps synonyms: \\cfrac, \\dbinom, \\leqslant, \\lt, \\emptyset', () => {
    expect(n('\\cfrac{1}{2}')).toBe('\\frac{1}{2}');
    expect(n('\\dbinom{5}{2}')).toBe('\\binom{5}{2}');
    expect(n('x \\leqslant 3')).toBe('x\\le3');
    expect(n('x \\geq 3')).toBe('x\\ge3');
    expect(n('x \\neq 3')).toBe('x\\ne3');
    expect(n('x \\lt 3')).toBe('x<3');
    expect(n('\\emptyset')).toBe('\\{\\}');
    expect(n('\\varnothing')).toBe('\\{\\}');
    expect(n('\\left')).toBe(''); // sizing only
    expect(n('\\leqq')).toBe('\\leqq'); // another command
    expect(n('\\ltimes')).toBe('\\ltimes');
  });
  it('unwraps bold and italic wrappers like \\text', () => {
    expect(n('\\mathbf{127}')).toBe('127');
    expect(n('\\boldsymbol{x}')).toBe('x');
    expect(n('\\textbf{(113) }')).toBe('113');
    expect(n('\\mathit{abc}')).toBe('abc');
  });
  it('drops parentheses around one plain number', () => {
    expect(n('(113)')).toBe('113');
    expect(n('(-2.5)')).toBe('-2.5');
    expect(n('(1,2)')).toBe('(1,2)');
    expect(n('(x)')).toBe('(x)');
    expect(n('(1)(2)')).toBe('(1)(2)');
  });
  it('turns a mixed number into an improper fraction', () => {
    expect(n('2\\frac{1}{2}')).toBe('\\frac{5}{2}');
    expect(n('-3\\frac{1}{4}')).toBe('-\\frac{13}{4}');
    expect(n('2\\frac12')).toBe('\\frac{5}{2}');
    expect(n('2\\frac{3}{2}')).toBe('2\\frac{3}{2}'); // not a proper fraction
    expect(n('2\\frac{\\pi}{3}')).toBe('2\\frac{\\pi}{3}');
    expect(n('0\\frac{1}{2}')).toBe('0\\frac{1}{2}');
  });
  it('can skip rules by name', () => {
    expect(n('y = 2x+3', { skip: ['assignment'] })).toBe('y=2x+3');
    expect(n('y = 2x+3')).toBe('2x+3');
  });
  it('lists its rules by name, each covered above', () => {
    expect(NORMALIZATION_RULES.map((r) => r.name)).toEqual([
      'delimiters', 'sizing', 'spacing', 'commands', 'degrees', 'percent', 'text', 'unitWords', 'trailingPeriod',
      'thousands', 'whitespace', 'assignment', 'leadingPlus', 'numberParentheses', 'bareArguments', 'mixedNumber',
      'slashFraction', 'decimals',
    ]);
  });
  it('does not normalize very long strings, only trims them', () => {
    const long = ` ${'1,000 '.repeat(MAX_NORMALIZE_CHARS)} `;
    expect(n(long)).toBe(long.trim());
    expect(n(undefined as unknown as string)).toBe('');
  });
});

describe('normalizeTextAnswer', () => {
  it('lower-cases, collapses spaces and unwraps text', () => {
    expect(normalizeTextAnswer('  The  Capital is PARIS. ')).toBe('the capital is paris');
    expect(normalizeTextAnswer('$\\text{Paris}$')).toBe('paris');
    expect(normalizeTextAnswer('Paris')).not.toBe(normalizeTextAnswer('London'));
  });
});
