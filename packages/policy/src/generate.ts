/**
 * Batched autoregressive generation with a KV cache.
 *
 * Prompts of different lengths are LEFT-padded into one [B, Lmax] batch; padding keys are masked and each
 * sequence's rotary positions start at 0 at its first real token, so every row computes what it would alone.
 * One forward over the prompts fills the cache, then each step feeds one token per row (on wasm through
 * DirectDecoder, decode.ts: the same kernels without the tfjs engine), reads the [B, V] logits and samples on
 * the host with a per-row seeded Rng. Rows that stopped (EOS) are dropped from the batch (and their cache rows
 * gathered away) once enough of them have finished.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@empo/core';
import type { ModelConfig } from './config.ts';
import { DirectDecoder, directDecodeApplies } from './decode.ts';
import { concat, gatherRows } from './kernels/copy.ts';
import { decodeFromStoredWeights, forward, preferLazyLayers, prepareWeights, tidy, type KVCache, type NewKV } from './model.ts';
import { sampleToken } from './sampling.ts';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy (argmax). */
  temperature: number;
  /** Nucleus sampling mass in (0, 1]; default 1 (no truncation). */
  topP?: number;
  /** Seed or generator (advanced by one draw per prompt); required when temperature > 0. */
  seed?: number | Rng;
  /** Stop a sequence after it emits an EOS token (default true). */
  stopAtEos?: boolean;
  /**
   * One seed per prompt, as `rowSeeds(seed, n)` draws them: prompt i samples from `new Rng(rowSeeds[i])`. Used
   * instead of `seed`, so that a batch split across several calls (or worker threads) draws what it would whole.
   */
  rowSeeds?: readonly number[];
  /**
   * Left-pad the prompts to at least this many tokens (default: the longest prompt). A row computes exactly the
   * same values whatever the other rows of its batch are, as long as the padded length is the same: when a batch
   * is split across calls, give every part the whole batch's longest prompt length.
   */
  padTo?: number;
}

/** The per-prompt seeds `generate` draws from `seed` for n prompts (an Rng is advanced by n draws). */
export function rowSeeds(seed: number | Rng, n: number): number[] {
  const base = typeof seed === 'number' ? new Rng(seed) : seed;
  return Array.from({ length: n }, () => base.nextUint32());
}

export interface GenerateResult {
  /** New tokens per prompt (the EOS token included when it stopped the sequence; nothing after it). */
  tokens: number[][];
  /**
   * logprobs[i][t]: log-prob of tokens[i][t] under softmax(logits / temperature) before top-p truncation
   * (temperature 0: under softmax(logits)).
   */
  logprobs: number[][];
  /** Whether the sequence ended with an EOS token (false: it hit maxNewTokens). */
  finished: boolean[];
}

/** What generation needs from a policy. */
export interface GenerationModel {
  readonly config: ModelConfig;
  readonly weights: ReadonlyMap<string, tf.Tensor>;
  readonly stopIds: ReadonlySet<number>;
  readonly padId: number;
}

interface Plan {
  B: number;
  V: number;
  lens: number[];
  Lmax: number;
  temperature: number;
  topP: number;
  stopAtEos: boolean;
  rngs: (Rng | null)[];
  result: GenerateResult;
}

function plan(m: GenerationModel, prompts: number[][], opts: GenerateOptions): Plan {
  const { maxNewTokens, temperature } = opts;
  const topP = opts.topP ?? 1;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) throw new Error(`generate: maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new Error(`generate: temperature must be >= 0, got ${temperature}`);
  if (!(topP > 0 && topP <= 1)) throw new Error(`generate: topP must be in (0, 1], got ${topP}`);
  if (temperature > 0 && opts.seed === undefined && opts.rowSeeds === undefined) throw new Error('generate: a seed is required when temperature > 0');
  if (opts.rowSeeds && opts.rowSeeds.length !== prompts.length) throw new Error(`generate: ${opts.rowSeeds.length} rowSeeds for ${prompts.length} prompts`);
  if (opts.padTo !== undefined && !(Number.isInteger(opts.padTo) && opts.padTo >= 0)) throw new Error(`generate: padTo must be a non-negative integer, got ${opts.padTo}`);
  const V = m.config.vocab_size;
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`generate: prompt ${i} is empty (prepend a BOS token)`);
    for (const id of p) if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`generate: prompt ${i} has token id ${id} outside [0, ${V})`);
  });
  const B = prompts.length;
  const seeds = opts.rowSeeds ?? (opts.seed === undefined ? null : rowSeeds(opts.seed, B));
  const lens = prompts.map((p) => p.length);
  return {
    B,
    V,
    lens,
    Lmax: Math.max(opts.padTo ?? 0, ...lens),
    temperature,
    topP,
    stopAtEos: opts.stopAtEos ?? true,
    rngs: prompts.map((_, i) => (seeds ? new Rng(seeds[i]!) : null)),
    result: { tokens: prompts.map(() => []), logprobs: prompts.map(() => []), finished: prompts.map(() => false) },
  };
}

/** Sample the next token of each batch row whose sequence is still running; returns the token fed next per row. */
function sampleStep(m: GenerationModel, p: Plan, logits: Float32Array | Int32Array | Uint8Array, rows: number[]): number[] {
  const next: number[] = [];
  rows.forEach((i, r) => {
    if (p.result.finished[i]) {
      next.push(m.padId);
      return;
    }
    const s = sampleToken(logits, r * p.V, p.V, p.temperature, p.topP, p.rngs[i]!);
    p.result.tokens[i]!.push(s.token);
    p.result.logprobs[i]!.push(s.logprob);
    if (p.stopAtEos && m.stopIds.has(s.token)) p.result.finished[i] = true;
    next.push(s.token);
  });
  return next;
}

function disposeCache(c: KVCache | null): void {
  if (c) tf.dispose([...c.k.flat(), ...c.v.flat()]);
}

/** Keys appended to the recent cache segment until it has this many positions, then merged into the first. */
const RECENT_SEGMENT = 16;

/**
 * The cache after one more forward: per layer [prefix, recent + new], where recent + new is merged into the
 * prefix once it reaches RECENT_SEGMENT positions: a step copies at most RECENT_SEGMENT cached positions, and
 * the whole cache once every RECENT_SEGMENT steps, instead of the whole cache every step.
 */
function extendCache(cache: KVCache, kv: NewKV): KVCache {
  const extend = (segs: tf.Tensor4D[], t: tf.Tensor4D): tf.Tensor4D[] => {
    const [prefix, recent] = segs;
    if (!prefix) return [t];
    const tail = recent ? concat([recent, t], 2) : t;
    return tail.shape[2] >= RECENT_SEGMENT ? [concat([prefix, tail], 2)] : [prefix, tail];
  };
  return tidy(() => ({ k: cache.k.map((segs, i) => extend(segs, kv.k[i]!)), v: cache.v.map((segs, i) => extend(segs, kv.v[i]!)) }));
}

/** Batched generation with a KV cache. */
export function generate(m: GenerationModel, prompts: number[][], opts: GenerateOptions): GenerateResult {
  const p = plan(m, prompts, opts);
  if (p.B === 0 || opts.maxNewTokens === 0) return p.result;
  const cfg = m.config;
  // Linear weights transposed once and reused every step, unless the model's matrices are large: then they are
  // used as stored, through `linear`, which transposes each step's few rows of activations instead.
  const w = tidy(() => prepareWeights(cfg, m.weights, { lazyLayers: preferLazyLayers(cfg), transposed: !decodeFromStoredWeights(cfg) }));
  let cache: KVCache | null = null;
  let direct: DirectDecoder | null = null;
  let logits: tf.Tensor | null = null;
  try {
    // Batch rows -> sequence index; rows of finished sequences are dropped in batches.
    let rows = prompts.map((_, i) => i);
    const pad = (i: number): number => p.Lmax - p.lens[i]!;
    let keyValid = rows.map((i) => Array.from({ length: p.Lmax }, (_, j) => j >= pad(i)));
    // Prefill each distinct prompt once (several samples per prompt are the common case), then copy
    // its cache rows and last logits to every row that has that prompt.
    const firstOf = new Map<string, number>(); // prompt -> index in `uniq`
    const uniq: number[] = []; // a representative sequence index per distinct prompt
    const rowToUniq = rows.map((i) => {
      const key = prompts[i]!.join(',');
      if (!firstOf.has(key)) {
        firstOf.set(key, uniq.length);
        uniq.push(i);
      }
      return firstOf.get(key)!;
    });
    const prefill = tidy(() => {
      const out = forward(
        cfg,
        w,
        {
          ids: uniq.map((i) => [...new Array<number>(pad(i)).fill(m.padId), ...prompts[i]!]), // [U, Lmax] left-padded
          positions: uniq.map((i) => Array.from({ length: p.Lmax }, (_, j) => Math.max(0, j - pad(i)))),
          keyValid: uniq.map((i) => keyValid[i]!),
        },
        { lastOnly: true },
      );
      if (uniq.length === rows.length) return out;
      const expand = <T extends tf.Tensor>(t: T) => gatherRows(t, rowToUniq); // [U, ...] -> [B, ...]
      return { logits: expand(out.logits), kv: { k: out.kv.k.map(expand), v: out.kv.v.map(expand) } };
    });
    // Token steps: DirectDecoder where it applies (the same kernels without the engine), else the tfjs forward.
    if (directDecodeApplies(cfg, w)) {
      direct = new DirectDecoder(cfg, w, prefill.kv, { rows: rows.length, maxKeys: p.Lmax + opts.maxNewTokens, recentSegment: RECENT_SEGMENT });
    } else {
      cache = { k: prefill.kv.k.map((t) => [t]), v: prefill.kv.v.map((t) => [t]) };
    }
    logits = prefill.logits; // [B, V]
    let data = logits.dataSync() as Float32Array;
    logits.dispose();
    logits = null;
    for (let step = 0; ; step++) {
      let next = sampleStep(m, p, data, rows);
      if (step === opts.maxNewTokens - 1) break;
      const live = rows.flatMap((i, r) => (p.result.finished[i] ? [] : [r]));
      if (live.length === 0) break;
      if (rows.length - live.length >= Math.max(1, rows.length / 8)) {
        // Drop finished rows: gather the live rows of every cached tensor.
        if (direct) direct.dropRows(live);
        else {
          const old: KVCache = cache!;
          cache = tidy(() => {
            const pick = (segs: tf.Tensor4D[]): tf.Tensor4D[] => segs.map((t) => gatherRows(t, live));
            return { k: old.k.map(pick), v: old.v.map(pick) };
          });
          disposeCache(old);
        }
        rows = live.map((r) => rows[r]!);
        keyValid = live.map((r) => keyValid[r]!);
        next = live.map((r) => next[r]!);
      }
      for (const kv of keyValid) kv.push(true);
      const positions = rows.map((i) => p.lens[i]! + step);
      if (direct) {
        data = direct.step(next, positions, keyValid);
        continue;
      }
      const prev: KVCache = cache!;
      const res = tidy(() => forward(cfg, w, { ids: next.map((t) => [t]), positions: positions.map((pos) => [pos]), keyValid }, { cache: prev, lastOnly: true }));
      logits = res.logits;
      cache = extendCache(prev, res.kv);
      // Free what the new cache does not reuse.
      const kept = new Set([...cache.k.flat(), ...cache.v.flat()]);
      tf.dispose([...prev.k.flat(), ...prev.v.flat(), ...res.kv.k, ...res.kv.v].filter((t) => !kept.has(t)));
      data = logits.dataSync() as Float32Array;
      logits.dispose();
      logits = null;
    }
  } finally {
    disposeCache(cache);
    direct?.dispose();
    logits?.dispose();
    // Dispose what prepareWeights created, not the model's own weights (some are passed through as is).
    const own = new Set<tf.Tensor>(m.weights.values());
    const made = [w.embed, w.norm, w.lmHead, w.rot, ...w.layers.flatMap((l) => Object.values(l) as (tf.Tensor | null)[])];
    tf.dispose(made.filter((t): t is tf.Tensor => t instanceof tf.Tensor && !own.has(t)));
  }
  return p.result;
}

/** Reference implementation: a full forward over the whole (left-padded) batch for every new token. */
export function generateUncached(m: GenerationModel, prompts: number[][], opts: GenerateOptions): GenerateResult {
  const p = plan(m, prompts, opts);
  if (p.B === 0 || opts.maxNewTokens === 0) return p.result;
  const cfg = m.config;
  const rows = prompts.map((_, i) => i);
  const seqs = prompts.map((pr) => [...new Array<number>(p.Lmax - pr.length).fill(m.padId), ...pr]);
  for (let step = 0; step < opts.maxNewTokens; step++) {
    const data = tf.tidy(() => {
      const w = prepareWeights(cfg, m.weights, { lazyLayers: preferLazyLayers(cfg) });
      const L = p.Lmax + step;
      const { logits } = forward(
        cfg,
        w,
        {
          ids: seqs,
          positions: rows.map((i) => Array.from({ length: L }, (_, j) => Math.max(0, j - (p.Lmax - p.lens[i]!)))),
          keyValid: rows.map((i) => Array.from({ length: L }, (_, j) => j >= p.Lmax - p.lens[i]!)),
        },
        { lastOnly: true },
      );
      return logits.dataSync() as Float32Array;
    });
    const next = sampleStep(m, p, data, rows);
    if (rows.every((i) => p.result.finished[i])) break;
    next.forEach((t, i) => seqs[i]!.push(t));
  }
  return p.result;
}
