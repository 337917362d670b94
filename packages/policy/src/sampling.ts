/**
 * Token sampling on the host from one row of logits: temperature, nucleus (top-p) filtering, greedy.
 * Arithmetic in float64.
 */
import type { Rng } from '@empo/core';

export interface Sample {
  token: number;
  /**
   * log p(token) under softmax(logits / temperature) BEFORE top-p truncation
   * (temperature 0: under softmax(logits), i.e. temperature 1).
   */
  logprob: number;
}

/**
 * Draw a token from logits[offset .. offset + V). temperature 0 = argmax (lowest id on ties, no random draw);
 * otherwise exactly one uniform is drawn from `rng`. topP in (0, 1]: keep the most probable tokens whose
 * cumulative probability first reaches topP (at least one), renormalise, sample among them.
 */
export function sampleToken(logits: ArrayLike<number>, offset: number, V: number, temperature: number, topP: number, rng: Rng | null): Sample {
  if (temperature === 0) {
    let best = 0;
    let max = -Infinity;
    for (let i = 0; i < V; i++) {
      const z = logits[offset + i]!;
      if (z > max) {
        max = z;
        best = i;
      }
    }
    return { token: best, logprob: max - logSumExp(logits, offset, V, 1, max) };
  }
  if (!rng) throw new Error('sampleToken: temperature > 0 needs an rng');
  const inv = 1 / temperature;
  let max = -Infinity;
  for (let i = 0; i < V; i++) {
    const z = logits[offset + i]! * inv;
    if (z > max) max = z;
  }
  const p = scratch(V);
  let total = 0;
  for (let i = 0; i < V; i++) total += p[i] = Math.exp(logits[offset + i]! * inv - max);
  const logTotal = Math.log(total);
  const u = rng.next();
  let token: number;
  if (topP >= 1) {
    token = pick(p, null, V, u * total);
  } else {
    // The nucleus is a prefix of the tokens sorted by probability; so is {i : p_i >= tau} for any tau. Sort
    // only such a prefix whose mass already reaches topP (tau lowered until it does): the same result as
    // sorting all V tokens, much faster for a large vocabulary.
    let pMax = 0;
    for (let i = 0; i < V; i++) pMax = Math.max(pMax, p[i]!);
    let order: number[] = [];
    for (let tau = pMax / 64; ; tau /= 64) {
      order = [];
      let mass = 0;
      for (let i = 0; i < V; i++) if (p[i]! >= tau) (order.push(i), (mass += p[i]!));
      if (mass >= topP * total * (1 + 1e-9) || order.length === V || tau === 0) break; // margin: summation order
    }
    order.sort((a, b) => p[b]! - p[a]! || a - b);
    let kept = 0;
    let mass = 0;
    while (kept < order.length && (kept === 0 || mass < topP * total)) mass += p[order[kept++]!]!;
    token = pick(p, order, kept, u * mass);
  }
  return { token, logprob: logits[offset + token]! * inv - max - logTotal };
}

let SCRATCH = new Float64Array(0);
/** A reused buffer of at least n doubles (sampling runs once per row per step: no allocation each time). */
function scratch(n: number): Float64Array {
  if (SCRATCH.length < n) SCRATCH = new Float64Array(n);
  return SCRATCH.length === n ? SCRATCH : SCRATCH.subarray(0, n);
}

/** The index (through `order` if given) where the running sum of p first exceeds `target`. */
function pick(p: Float64Array, order: number[] | null, n: number, target: number): number {
  let acc = 0;
  let last = order ? order[0]! : 0;
  for (let k = 0; k < n; k++) {
    const i = order ? order[k]! : k;
    if (p[i]! <= 0) continue;
    last = i;
    acc += p[i]!;
    if (target < acc) return i;
  }
  return last; // rounding: target at the very top of the range
}

function logSumExp(x: ArrayLike<number>, offset: number, V: number, temperature: number, maxZ: number): number {
  let s = 0;
  for (let i = 0; i < V; i++) s += Math.exp(x[offset + i]! / temperature - maxZ);
  return maxZ + Math.log(s);
}
