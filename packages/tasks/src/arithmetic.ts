import { Rng } from '@empo/core';

/**
 * Two-step arithmetic problems for the bundled tiny demo:
 *   question  `a=7 b=3*4 a+b=?`
 *   solution  `3*4=12 7+12=19 \boxed{19}`
 * The first operation (+, - or *) builds b from two digits; the second is a+b, a-b or b-a,
 * chosen so the answer is never negative. Digits are 1-9.
 */
export interface ArithProblem {
  question: string;
  /** The correct final answer. */
  answer: number;
  /** The correct step-by-step solution, ending in \boxed{answer}. */
  solution: string;
  /** Parts kept so that noisy solutions can be written. */
  parts: { a: number; x: number; y: number; op1: Op1; op2: Op2 };
}

type Op1 = '+' | '-' | '*';
type Op2 = 'a+b' | 'a-b' | 'b-a';

const op1s: Op1[] = ['+', '-', '*'];
const op2s: Op2[] = ['a+b', 'a-b', 'b-a'];

function applyOp1(x: number, op: Op1, y: number): number {
  return op === '+' ? x + y : op === '-' ? x - y : x * y;
}

function applyOp2(a: number, b: number, op: Op2): number {
  return op === 'a+b' ? a + b : op === 'a-b' ? a - b : b - a;
}

function stepText(a: number, b: number, op: Op2): string {
  return op === 'a+b' ? `${a}+${b}` : op === 'a-b' ? `${a}-${b}` : `${b}-${a}`;
}

export function makeProblem(a: number, x: number, y: number, op1: Op1, op2: Op2): ArithProblem {
  const b = applyOp1(x, op1, y);
  const answer = applyOp2(a, b, op2);
  const question = `a=${a} b=${x}${op1}${y} ${op2}=?`;
  const solution = `${x}${op1}${y}=${b} ${stepText(a, b, op2)}=${answer} \\boxed{${answer}}`;
  return { question, answer, solution, parts: { a, x, y, op1, op2 } };
}

/** Every problem of the family, in a fixed order (invalid ones, with a negative b or answer, left out). */
export function allProblems(): ArithProblem[] {
  const out: ArithProblem[] = [];
  for (let a = 1; a <= 9; a++)
    for (let x = 1; x <= 9; x++)
      for (let y = 1; y <= 9; y++)
        for (const op1 of op1s)
          for (const op2 of op2s) {
            if (applyOp1(x, op1, y) < 0) continue;
            const p = makeProblem(a, x, y, op1, op2);
            if (p.answer >= 0) out.push(p);
          }
  return out;
}

function fnv1a(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h >>> 0;
}

/**
 * Which split a question belongs to, from a hash of its text. The pretraining split (seven
 * questions in eight) is the only one the base model's supervised solutions come from; the
 * held-out split is never pretrained on, and holds both the unlabeled questions EMPO trains on
 * and the labeled evaluation questions (disjoint, see `heldOutProblems`).
 */
export function splitOf(question: string): Split {
  return fnv1a(question) % 8 === 0 ? 'heldout' : 'pretrain';
}

export type Split = 'pretrain' | 'heldout';

/** Every problem of one split, in the fixed order of allProblems. */
export function problemsOf(split: Split): ArithProblem[] {
  return allProblems().filter((p) => splitOf(p.question) === split);
}

/** `count` distinct problems of one split, in a seeded random order. */
export function sampleProblems(split: Split, count: number, seed: number): ArithProblem[] {
  const pool = problemsOf(split);
  if (count > pool.length) throw new RangeError(`only ${pool.length} ${split} problems exist, asked for ${count}`);
  return Rng.derive(seed, 'arith', split).shuffle(pool).slice(0, count);
}

/** How many held-out problems exist (the evaluation and the RL questions share them). */
export function heldOutCount(): number {
  return problemsOf('heldout').length;
}

/**
 * The held-out split, divided in a seeded order: the first `evalCount` problems are the labeled
 * evaluation set, the next `trainCount` (null: all the rest) the unlabeled training questions.
 * Neither was seen in pretraining, and the two never overlap.
 */
export function heldOutProblems(evalCount: number, trainCount: number | null, seed: number): { eval: ArithProblem[]; train: ArithProblem[] } {
  const pool = problemsOf('heldout');
  const train = trainCount ?? Math.max(0, pool.length - evalCount);
  if (train < 1 || evalCount + train > pool.length) {
    throw new RangeError(`only ${pool.length} held-out problems exist: ${evalCount} evaluation (--eval) + ${train} training questions (--train) do not fit`);
  }
  // The label 'eval' keeps the evaluation set of seed 1234 what it was before the training questions moved here.
  const order = Rng.derive(seed, 'arith', 'eval').shuffle(pool);
  return { eval: order.slice(0, evalCount), train: order.slice(evalCount, evalCount + train) };
}

/**
 * A solution in which each written step is off by +-1 or +-2 with probability `errorRate`,
 * the error carried to the final answer. Pretraining on such solutions gives a model whose
 * greedy answer is mostly right while its samples disagree: the regime in which EMPO helps.
 */
export function noisySolution(problem: ArithProblem, rng: Rng, errorRate: number): { solution: string; answer: number } {
  const { a, x, y, op1, op2 } = problem.parts;
  const perturb = (value: number) => {
    if (rng.next() >= errorRate) return value;
    const delta = (rng.next() < 0.5 ? -1 : 1) * (rng.next() < 0.5 ? 1 : 2);
    return value + delta < 0 ? value - delta : value + delta;
  };
  const b = perturb(applyOp1(x, op1, y));
  let answer = perturb(applyOp2(a, b, op2));
  if (answer < 0) answer = -answer;
  return { solution: `${x}${op1}${y}=${b} ${stepText(a, b, op2)}=${answer} \\boxed{${answer}}`, answer };
}
