/**
 * The top-level structure of a normalized answer: a scalar, a tuple or interval `(a,b]`,
 * a set `\{a,b\}`, a bare list `a,b` (an "enter all solutions" answer), a union of
 * intervals, a matrix, a `\pm` pair, or a relation chain (`y=2x+3`, `2<x\le5`). Parsing is
 * a single bracket-aware scan; comparison is element-wise with a caller-given element
 * equivalence (so elements get the whole pipeline: string, numeric, structure, symbolic).
 */
import { relationsEquivalent, scalarVariables, type SymbolicVerdict } from './symbolic.ts';

export type RelationOp = '=' | '<' | '>' | '\\le' | '\\ge' | '\\ne';

export type Structure =
  | { kind: 'scalar'; text: string }
  | { kind: 'tuple'; open: '(' | '['; close: ')' | ']'; items: string[] }
  | { kind: 'set'; items: string[] }
  | { kind: 'list'; items: string[] }
  | { kind: 'union'; parts: string[] }
  | { kind: 'matrix'; rows: string[][] }
  | { kind: 'relation'; terms: string[]; ops: RelationOp[] };

/** Most items in a list, set, tuple, union or matrix that are compared element-wise. */
export const MAX_STRUCTURE_ITEMS = 64;

interface Token {
  text: string;
  /** Bracket depth before the token. */
  depth: number;
}

const OPEN = new Set(['(', '[', '{', '\\{']);
const CLOSE = new Set([')', ']', '}', '\\}']);

/**
 * Tokens of a normalized answer with their bracket depth; `\command`, `\{`, `\}`, `\\`,
 * `\begin{env}`, `\end{env}`, `<=`/`>=` are single tokens. Null when brackets do not balance.
 */
function tokenize(s: string): Token[] | null {
  const tokens: Token[] = [];
  let depth = 0;
  let i = 0;
  while (i < s.length) {
    let text: string;
    const ch = s[i]!;
    if (ch === '\\') {
      let j = i + 1;
      while (j < s.length && /[A-Za-z]/.test(s[j]!)) j++;
      if (j === i + 1) j = Math.min(i + 2, s.length); // `\{`, `\}`, `\\`, `\,` ...
      text = s.slice(i, j);
      if ((text === '\\begin' || text === '\\end') && s[j] === '{') {
        const close = s.indexOf('}', j);
        if (close < 0) return null;
        text = s.slice(i, close + 1);
      }
    } else if ((ch === '<' || ch === '>') && s[i + 1] === '=') {
      text = s.slice(i, i + 2);
    } else {
      text = ch;
    }
    const opens = OPEN.has(text) || text.startsWith('\\begin{');
    const closes = CLOSE.has(text) || text.startsWith('\\end{');
    if (closes) depth--;
    if (depth < 0) return null;
    tokens.push({ text, depth });
    if (opens) depth++;
    i += text.length;
  }
  return depth === 0 ? tokens : null;
}

function join(tokens: readonly Token[]): string {
  let out = '';
  for (const t of tokens) out += t.text;
  return out.trim();
}

/** Split tokens at depth-0 tokens for which `isSeparator` holds. */
function splitTop(tokens: readonly Token[], isSeparator: (text: string) => boolean, depth = 0): { parts: Token[][]; seps: string[] } {
  const parts: Token[][] = [[]];
  const seps: string[] = [];
  for (const t of tokens) {
    if (t.depth === depth && isSeparator(t.text)) {
      parts.push([]);
      seps.push(t.text);
    } else {
      parts[parts.length - 1]!.push(t);
    }
  }
  return { parts, seps };
}

const RELATION_TOKENS: Record<string, RelationOp> = {
  '=': '=', '<': '<', '>': '>', '\\le': '\\le', '\\ge': '\\ge', '\\ne': '\\ne', '<=': '\\le', '>=': '\\ge',
};

const MATRIX_ENV = /^\\begin\{([pbB]?matrix)\}$/;

/** The structure of a normalized answer (whitespace already removed). Never throws. */
export function parseStructure(s: string): Structure {
  const scalar: Structure = { kind: 'scalar', text: s };
  const tokens = tokenize(s);
  if (tokens === null || tokens.length === 0) return scalar;
  const first = tokens[0]!.text;
  const last = tokens[tokens.length - 1]!.text;

  // Matrix: \begin{pmatrix} ... \end{pmatrix} spanning the whole answer.
  const env = MATRIX_ENV.exec(first);
  if (env && last === `\\end{${env[1]}}` && tokens.slice(1, -1).every((t) => t.depth >= 1)) {
    const body = tokens.slice(1, -1);
    const rows = splitTop(body, (t) => t === '\\\\', 1).parts
      .map((row) => splitTop(row, (t) => t === '&', 1).parts.map(join))
      .filter((row) => !(row.length === 1 && row[0] === ''));
    if (rows.length > 0 && rows.every((r) => r.length === rows[0]!.length)) return { kind: 'matrix', rows };
    return scalar;
  }

  const commas = splitTop(tokens, (t) => t === ',');
  if (commas.parts.length > 1) return { kind: 'list', items: commas.parts.map(join) };

  const union = splitTop(tokens, (t) => t === '\\cup');
  if (union.parts.length > 1) return { kind: 'union', parts: union.parts.map(join) };

  const relations = splitTop(tokens, (t) => t in RELATION_TOKENS);
  if (relations.parts.length > 1) {
    return { kind: 'relation', terms: relations.parts.map(join), ops: relations.seps.map((t) => RELATION_TOKENS[t]!) };
  }

  // Whole-answer brackets: the first bracket closes at the last token.
  const closesAtEnd = (open: Set<string>, close: Set<string>): boolean => {
    if (!open.has(first) || !close.has(last)) return false;
    for (let k = 1; k < tokens.length - 1; k++) if (tokens[k]!.depth === 0) return false;
    return true;
  };
  if (first === '\\{' && last === '\\}' && closesAtEnd(new Set(['\\{']), new Set(['\\}']))) {
    const inner = tokens.slice(1, -1);
    if (inner.length === 0) return { kind: 'set', items: [] };
    return { kind: 'set', items: splitTop(inner, (t) => t === ',', 1).parts.map(join) };
  }
  if (closesAtEnd(new Set(['(', '[']), new Set([')', ']']))) {
    const inner = tokens.slice(1, -1);
    const items = splitTop(inner, (t) => t === ',', 1).parts.map(join);
    if (items.length > 1) return { kind: 'tuple', open: first as '(' | '[', close: last as ')' | ']', items };
    if (first === '(' && last === ')' && inner.length > 0) return parseStructure(join(inner));
    return scalar;
  }

  // One `\pm` anywhere (`1\pm\sqrt2`, `\frac{1\pm\sqrt5}{2}`, `\pm3`): the pair with + and -.
  const pm = tokens.filter((t) => t.text === '\\pm').length;
  if (pm === 1) {
    const spell = (sign: string) => tokens.map((t) => (t.text === '\\pm' ? sign : t.text)).join('').replace(/^\+/, '');
    return { kind: 'list', items: [spell('+'), spell('-')] };
  }
  return scalar;
}

/** Element equivalence used inside structures: the whole pipeline on two (normalized) parts. */
export type ElementEquivalence = (a: string, b: string) => boolean;

/** A plain word of 3+ letters (not a command name such as `\\sqrt`). */
function hasWord(s: string): boolean {
  return /(?:^|[^A-Za-z\\])[A-Za-z]{3,}/.test(s);
}

const INFINITY = /^[+]?\\infty$/;
const NEG_INFINITY = /^-\\infty$/;

function isInfinite(s: string): boolean {
  return INFINITY.test(s) || NEG_INFINITY.test(s);
}

interface Interval {
  lo: string;
  hi: string;
  loClosed: boolean;
  hiClosed: boolean;
}

/** Set equality: every element of each side has an equivalent on the other side. */
function sameSet(a: readonly string[], b: readonly string[], eq: ElementEquivalence): boolean {
  const covered = (xs: readonly string[], ys: readonly string[]) => xs.every((x) => ys.some((y) => eq(x, y)));
  return covered(a, b) && covered(b, a);
}

function sameInterval(a: Interval, b: Interval, eq: ElementEquivalence): boolean {
  if (!eq(a.lo, b.lo) || !eq(a.hi, b.hi)) return false;
  // Brackets must agree, except at an infinite end, where `[` / `]` is a common slip.
  if (a.loClosed !== b.loClosed && !isInfinite(a.lo)) return false;
  if (a.hiClosed !== b.hiClosed && !isInfinite(a.hi)) return false;
  return true;
}

function tupleInterval(t: Extract<Structure, { kind: 'tuple' }>): Interval | null {
  if (t.items.length !== 2) return null;
  return { lo: t.items[0]!, hi: t.items[1]!, loClosed: t.open === '[', hiClosed: t.close === ']' };
}

/** A single-variable variable name: one letter or one Greek command. */
function isVariable(s: string): boolean {
  return /^(?:[A-Za-z]|\\[A-Za-z]+)$/.test(s) && !/^\\(?:pi|infty)$/.test(s) && s !== 'e' && s !== 'i';
}

function isConstant(s: string): boolean {
  if (isInfinite(s)) return true;
  const vars = scalarVariables(s);
  return vars !== null && vars.length === 0;
}

const FLIP: Partial<Record<RelationOp, RelationOp>> = { '>': '<', '\\ge': '\\le' };

/** Relation chain reading left to right with `<` / `\le` / `=` / `\ne` only. */
function orientRelation(r: Extract<Structure, { kind: 'relation' }>): { terms: string[]; ops: RelationOp[] } | null {
  const flips = r.ops.map((op) => op in FLIP);
  if (flips.every((f) => f)) return { terms: [...r.terms].reverse(), ops: r.ops.map((op) => FLIP[op]!).reverse() };
  if (flips.some((f) => f) && r.ops.length > 1) return null; // mixed directions: `1<x>0`
  return { terms: r.terms, ops: r.ops };
}

/** `x<3`, `3\le x`, `1<x\le5` as an interval of the variable, with the variable's name. */
function relationInterval(r: Extract<Structure, { kind: 'relation' }>): { variable: string; interval: Interval } | null {
  const o = orientRelation(r);
  if (o === null || o.ops.some((op) => op !== '<' && op !== '\\le')) return null;
  const closed = (op: RelationOp) => op === '\\le';
  if (o.terms.length === 2) {
    const [l, rr] = o.terms as [string, string];
    if (isVariable(l) && isConstant(rr)) return { variable: l, interval: { lo: '-\\infty', hi: rr, loClosed: false, hiClosed: closed(o.ops[0]!) } };
    if (isVariable(rr) && isConstant(l)) return { variable: rr, interval: { lo: l, hi: '\\infty', loClosed: closed(o.ops[0]!), hiClosed: false } };
    return null;
  }
  if (o.terms.length === 3) {
    const [l, v, h] = o.terms as [string, string, string];
    if (isVariable(v) && isConstant(l) && isConstant(h)) {
      return { variable: v, interval: { lo: l, hi: h, loClosed: closed(o.ops[0]!), hiClosed: closed(o.ops[1]!) } };
    }
  }
  return null;
}

function relationsSame(
  a: Extract<Structure, { kind: 'relation' }>,
  b: Extract<Structure, { kind: 'relation' }>,
  eq: ElementEquivalence,
): SymbolicVerdict {
  const ia = relationInterval(a);
  const ib = relationInterval(b);
  if (ia && ib) return ia.variable === ib.variable && sameInterval(ia.interval, ib.interval, eq);
  const oa = orientRelation(a);
  const ob = orientRelation(b);
  if (oa === null || ob === null || oa.ops.length !== ob.ops.length) return false;
  if (oa.ops.some((op, k) => op !== ob.ops[k])) return false;
  if (oa.terms.length === 2) {
    // Termwise equality first (`x+y=1` vs `y+x=1`), then proportional differences.
    if (eq(oa.terms[0]!, ob.terms[0]!) && eq(oa.terms[1]!, ob.terms[1]!)) return true;
    const op = oa.ops[0]!;
    const verdict = relationsEquivalent(
      `(${oa.terms[1]})-(${oa.terms[0]})`,
      `(${ob.terms[1]})-(${ob.terms[0]})`,
      op === '<' || op === '\\le',
    );
    if (verdict !== null) return verdict;
    if (op === '=' || op === '\\ne') {
      // Swapped sides of an equation: `3=x` vs `x=3`.
      return eq(oa.terms[0]!, ob.terms[1]!) && eq(oa.terms[1]!, ob.terms[0]!);
    }
    return false;
  }
  return oa.terms.every((t, k) => eq(t, ob.terms[k]!));
}

/**
 * Structural comparison. Null when both sides are scalars (the symbolic stage decides);
 * otherwise true / false: collections (lists, sets, `\pm` pairs) as sets, tuples and
 * intervals in order with the same brackets, unions as sets of intervals, matrices
 * element-wise, single-variable inequalities as intervals, equations and inequalities by
 * proportional differences. Different kinds are not equivalent.
 */
export function compareStructures(a: Structure, b: Structure, eq: ElementEquivalence): SymbolicVerdict {
  if (a.kind === 'scalar' && b.kind === 'scalar') return null;
  const size = (s: Structure): number =>
    s.kind === 'matrix' ? s.rows.length * (s.rows[0]?.length ?? 0) : s.kind === 'union' ? s.parts.length : s.kind === 'scalar' ? 1 : s.kind === 'relation' ? s.terms.length : s.items.length;
  if (size(a) > MAX_STRUCTURE_ITEMS || size(b) > MAX_STRUCTURE_ITEMS) return null;
  // Items with a `\pm` stand for two (`\pm1, \pm2` = `1,-1,2,-2`).
  const expand = (items: string[]): string[] =>
    items.flatMap((item) => {
      if (!item.includes('\\pm')) return [item];
      const st = parseStructure(item);
      return st.kind === 'list' ? st.items : [item];
    });
  const collection = (s: Structure): string[] | null => (s.kind === 'list' || s.kind === 'set' ? expand(s.items) : null);
  const ca = collection(a);
  const cb = collection(b);
  if (ca && cb) {
    // A bare list of words (`True, False`) is an ordered answer, not a solution set.
    if (a.kind === 'list' && b.kind === 'list' && (ca.some(hasWord) || cb.some(hasWord))) {
      return ca.length === cb.length && ca.every((x, k) => eq(x, cb[k]!));
    }
    return sameSet(ca, cb, eq);
  }
  if (a.kind === 'tuple' && b.kind === 'tuple') {
    const ia = tupleInterval(a);
    const ib = tupleInterval(b);
    if (ia && ib) return sameInterval(ia, ib, eq);
    return a.open === b.open && a.close === b.close && a.items.length === b.items.length && a.items.every((x, k) => eq(x, b.items[k]!));
  }
  if (a.kind === 'union' && b.kind === 'union') return sameSet(a.parts, b.parts, eq);
  if (a.kind === 'matrix' && b.kind === 'matrix') {
    return a.rows.length === b.rows.length && a.rows.every((row, r) => row.length === b.rows[r]!.length && row.every((x, k) => eq(x, b.rows[r]![k]!)));
  }
  if (a.kind === 'relation' && b.kind === 'relation') return relationsSame(a, b, eq);
  // An inequality against an interval: `x\le3` vs `(-\infty,3]`.
  const relationVsTuple = (r: Structure, t: Structure): SymbolicVerdict => {
    if (r.kind !== 'relation' || t.kind !== 'tuple') return null;
    const ir = relationInterval(r);
    const it = tupleInterval(t);
    return ir !== null && it !== null ? sameInterval(ir.interval, it, eq) : false;
  };
  const mixed = relationVsTuple(a, b) ?? relationVsTuple(b, a);
  if (mixed !== null) return mixed;
  return false;
}
