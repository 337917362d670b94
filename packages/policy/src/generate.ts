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
import { Rng, type RngState } from '@empo/core';
import type { ModelConfig } from './config.ts';
import { DirectDecoder, directDecodeApplies, type DecoderRows } from './decode.ts';
import { concat, gatherRows } from './kernels/copy.ts';
import { decodeFromStoredWeights, forward, preferLazyLayers, prepareWeights, tidy, type KVCache, type NewKV, type Weights } from './model.ts';
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

/**
 * Rows that a `generate` call hands over mid-way (see HandoffControl) for `resumeGenerate` to finish, in another
 * thread: everything their next token steps need. The call that handed them over keeps their tokens so far and
 * reports them unfinished; the resumed call's tokens follow those.
 */
export interface RowHandoff {
  /** The rows, as indices into the handing call's prompts. */
  rows: number[];
  /** The step whose sampled token each row feeds next (`next`), at position promptLength + step. */
  step: number;
  next: number[];
  promptLengths: number[];
  /** Per row, which cached positions are real keys (left padding is not), as `forward`'s keyValid. */
  keyValid: boolean[][];
  /** Each row's sampling generator, as it is now (null: greedy). */
  rngs: (RngState | null)[];
  cache: DecoderRows;
  /** The handing call's padded prompt length and sampling settings. */
  Lmax: number;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  stopAtEos: boolean;
}

/**
 * How a caller asks a running `generate` to hand over rows (PolicyWorkers: another worker fell idle). Polled
 * between token steps; when it answers true and that is enough work (MIN_HANDOFF_WORK), the call hands over the
 * second half of its running rows through `send`. Only the DirectDecoder path hands over.
 */
export interface HandoffControl {
  poll(): boolean;
  send(handoff: RowHandoff): void;
}

/**
 * No handover of less work than this many row-steps (rows handed over x token steps left at most): moving the rows
 * costs a few ms (their cache out and in, a new task), about what 64 row-steps of decoding cost on the tiny model.
 */
const MIN_HANDOFF_WORK = 64;

/** The decoding state of a generate call between token steps. */
interface Decoding {
  /** Batch rows -> sequence index (rows of finished sequences are dropped in batches). */
  rows: number[];
  keyValid: boolean[][];
  /** The tokens fed at the next step, one per row, and that step's index. */
  next: number[];
  step: number;
  direct: DirectDecoder | null;
  cache: KVCache | null;
  logits: tf.Tensor | null;
}

/** Batched generation with a KV cache. */
export function generate(m: GenerationModel, prompts: number[][], opts: GenerateOptions, handoff?: HandoffControl): GenerateResult {
  const p = plan(m, prompts, opts);
  if (p.B === 0 || opts.maxNewTokens === 0) return p.result;
  const cfg = m.config;
  const w = prepare(m);
  const s: Decoding = { rows: range(prompts.length), keyValid: [], next: [], step: 0, direct: null, cache: null, logits: null };
  try {
    const pad = (i: number): number => p.Lmax - p.lens[i]!;
    s.keyValid = s.rows.map((i) => Array.from({ length: p.Lmax }, (_, j) => j >= pad(i)));
    // Prefill each distinct prompt once (several samples per prompt are the common case), then copy
    // its cache rows and last logits to every row that has that prompt.
    const firstOf = new Map<string, number>(); // prompt -> index in `uniq`
    const uniq: number[] = []; // a representative sequence index per distinct prompt
    const rowToUniq = s.rows.map((i) => {
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
          keyValid: uniq.map((i) => s.keyValid[i]!),
        },
        { lastOnly: true },
      );
      if (uniq.length === s.rows.length) return out;
      const expand = <T extends tf.Tensor>(t: T) => gatherRows(t, rowToUniq); // [U, ...] -> [B, ...]
      return { logits: expand(out.logits), kv: { k: out.kv.k.map(expand), v: out.kv.v.map(expand) } };
    });
    // Token steps: DirectDecoder where it applies (the same kernels without the engine), else the tfjs forward.
    if (directDecodeApplies(cfg, w)) {
      s.direct = new DirectDecoder(cfg, w, prefill.kv, { rows: s.rows.length, maxKeys: p.Lmax + opts.maxNewTokens, recentSegment: RECENT_SEGMENT });
    } else {
      s.cache = { k: prefill.kv.k.map((t) => [t]), v: prefill.kv.v.map((t) => [t]) };
    }
    s.logits = prefill.logits; // [B, V]
    const data = s.logits.dataSync() as Float32Array;
    s.logits.dispose();
    s.logits = null;
    tokenSteps(m, p, w, opts.maxNewTokens, s, data, handoff);
  } finally {
    release(m, w, s);
  }
  return p.result;
}

/**
 * Go on decoding rows that a generate call handed over (RowHandoff), from where it left them, to the same
 * tokens and log-probs it would have drawn: returns the rest of each row's tokens (the handing call's result
 * holds those before). Needs the DirectDecoder path (wasm with this package's kernels), as the handing call had.
 */
export function resumeGenerate(m: GenerationModel, h: RowHandoff, handoff?: HandoffControl): GenerateResult {
  const n = h.rows.length;
  const p: Plan = {
    B: n,
    V: m.config.vocab_size,
    lens: h.promptLengths,
    Lmax: h.Lmax,
    temperature: h.temperature,
    topP: h.topP,
    stopAtEos: h.stopAtEos,
    rngs: h.rngs.map((state) => (state ? new Rng(state) : null)),
    result: { tokens: h.rows.map(() => []), logprobs: h.rows.map(() => []), finished: h.rows.map(() => false) },
  };
  if ([h.next, h.promptLengths, h.keyValid, h.rngs].some((a) => a.length !== n)) throw new Error(`resumeGenerate: the handoff's per-row fields do not all have ${n} rows`);
  const w = prepare(m);
  const s: Decoding = { rows: range(n), keyValid: h.keyValid, next: pick(h.next, range(n)), step: h.step, direct: null, cache: null, logits: null };
  try {
    if (!directDecodeApplies(m.config, w)) throw new Error('resumeGenerate: rows handed over need the direct decoding path (wasm backend, all kernel groups on)');
    s.direct = DirectDecoder.resume(m.config, w, h.cache, { rows: n, maxKeys: h.Lmax + h.maxNewTokens, recentSegment: RECENT_SEGMENT });
    tokenSteps(m, p, w, h.maxNewTokens, s, null, handoff);
  } finally {
    release(m, w, s);
  }
  return p.result;
}

/**
 * Linear weights transposed once and reused every step, unless the model's matrices are large: then they are
 * used as stored, through `linear`, which transposes each step's few rows of activations instead. The last
 * model's prepared weights are kept for the next call while none of its weights changed (a tf.Variable gets a
 * new data id on every assign), so that a call (a worker's part of a batch, rows handed over) does not transpose
 * them again: on the tiny default that is 1.4-2 ms a call with the tiled Transpose (6-12 ms with tfjs-wasm's).
 * One model's are kept at a time (a call on another model, or releasePreparedWeights, disposes them); layers
 * prepared on demand (large models) are not kept.
 */
function prepare(m: GenerationModel): Weights {
  const cfg = m.config;
  const lazyLayers = preferLazyLayers(cfg);
  if (lazyLayers) return tidy(() => prepareWeights(cfg, m.weights, { lazyLayers, transposed: !decodeFromStoredWeights(cfg) }));
  const ids = [...m.weights.values()].map((t) => t.dataId as object);
  if (kept?.weights === m.weights && kept.ids.length === ids.length && kept.ids.every((id, i) => id === ids[i]) && !kept.made.some((t) => t.isDisposed)) return kept.w;
  if (kept) releasePreparedWeights(kept.weights);
  const w = tidy(() => prepareWeights(cfg, m.weights, { transposed: !decodeFromStoredWeights(cfg) }));
  kept = { weights: m.weights, ids, w, made: madeBy(m, w) };
  return w;
}

/** The prepared weights kept (see prepare), with the tensors prepareWeights made for them. */
let kept: { weights: ReadonlyMap<string, tf.Tensor>; ids: object[]; w: Weights; made: tf.Tensor[] } | null = null;

/** What prepareWeights created, not the model's own weights (some are passed through as is). */
function madeBy(m: GenerationModel, w: Weights): tf.Tensor[] {
  const own = new Set<tf.Tensor>(m.weights.values());
  const all = [w.embed, w.norm, w.lmHead, w.rot, ...w.layers.flatMap((l) => Object.values(l) as (tf.Tensor | null)[])];
  return all.filter((t): t is tf.Tensor => t instanceof tf.Tensor && !own.has(t));
}

/** Dispose the prepared weights kept for `weights`, if any (Policy.dispose calls it; a later generate prepares anew). */
export function releasePreparedWeights(weights: ReadonlyMap<string, tf.Tensor>): void {
  if (kept?.weights !== weights) return;
  tf.dispose(kept.made);
  kept = null;
}

function release(m: GenerationModel, w: Weights, s: Decoding): void {
  disposeCache(s.cache);
  s.direct?.dispose();
  s.logits?.dispose();
  if (kept?.w !== w) tf.dispose(madeBy(m, w)); // prepared for this call only
}

/**
 * The token steps: sample each row's token of step s.step from `data` (the logits of the step before; null when
 * s.next already holds them, as in a resumed call), stop or drop finished rows, maybe hand rows over, feed the
 * tokens, and so on.
 */
function tokenSteps(m: GenerationModel, p: Plan, w: Weights, maxNewTokens: number, s: Decoding, data: Float32Array | null, handoff?: HandoffControl): void {
  const cfg = m.config;
  for (;;) {
    if (data) {
      s.next = sampleStep(m, p, data, s.rows);
      if (s.step === maxNewTokens - 1) return;
      const live = liveRows(p, s);
      if (live.length === 0) return;
      if (s.rows.length - live.length >= Math.max(1, s.rows.length / 8)) keepRows(s, live);
      if (s.direct && handoff?.poll()) handOver(p, s, maxNewTokens, handoff);
    }
    for (const kv of s.keyValid) kv.push(true);
    const positions: number[] = [];
    for (const i of s.rows) positions.push(p.lens[i]! + s.step);
    s.step++;
    if (s.direct) {
      data = s.direct.step(s.next, positions, s.keyValid);
      continue;
    }
    const prev: KVCache = s.cache!;
    const res = tidy(() => forward(cfg, w, { ids: s.next.map((t) => [t]), positions: positions.map((pos) => [pos]), keyValid: s.keyValid }, { cache: prev, lastOnly: true }));
    s.logits = res.logits;
    s.cache = extendCache(prev, res.kv);
    // Free what the new cache does not reuse.
    const reused = new Set([...s.cache.k.flat(), ...s.cache.v.flat()]);
    tf.dispose([...prev.k.flat(), ...prev.v.flat(), ...res.kv.k, ...res.kv.v].filter((t) => !reused.has(t)));
    data = s.logits.dataSync() as Float32Array;
    s.logits.dispose();
    s.logits = null;
  }
}

/*
 * The token loop's arrays of row indices, tokens and positions are built by push onto a new array, never by map,
 * flatMap or a structured clone, whose results can hold the same small integers with another elements kind: V8
 * optimizes tokenSteps and DirectDecoder.step for the arrays' maps it has seen, and an array of another kind (first
 * met when rows are dropped, many steps into a run) threw that code away, so each worker compiled both again
 * (about 60 ms of TurboFan's CPU a worker and run, on the cores the workers compute on; BENCHMARKS.md).
 */

/** [0, 1, ..., n - 1]. */
function range(n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(i);
  return out;
}

/** xs[i] for each i of `at`, in that order. */
function pick<T>(xs: readonly T[], at: readonly number[]): T[] {
  const out: T[] = [];
  for (const i of at) out.push(xs[i]!);
  return out;
}

/** The batch rows (indices into s.rows) whose sequences have not finished. */
function liveRows(p: Plan, s: Decoding): number[] {
  const out: number[] = [];
  s.rows.forEach((i, r) => {
    if (!p.result.finished[i]) out.push(r);
  });
  return out;
}

/** Keep only the batch rows `keep` (indices into s.rows, ascending): gather their cache rows. */
function keepRows(s: Decoding, keep: readonly number[]): void {
  if (s.direct) s.direct.dropRows(keep);
  else {
    const old: KVCache = s.cache!;
    s.cache = tidy(() => {
      const pick = (segs: tf.Tensor4D[]): tf.Tensor4D[] => segs.map((t) => gatherRows(t, keep));
      return { k: old.k.map(pick), v: old.v.map(pick) };
    });
    disposeCache(old);
  }
  s.rows = pick(s.rows, keep);
  s.keyValid = pick(s.keyValid, keep);
  s.next = pick(s.next, keep);
}

/**
 * Hand the second half of the running rows over (see HandoffControl), when that is enough work. The batch keeps
 * its rows before the first one handed over (finished ones too, until the next drop): a prefix of the cache,
 * which stays where it is.
 */
function handOver(p: Plan, s: Decoding, maxNewTokens: number, handoff: HandoffControl): void {
  const live = liveRows(p, s);
  const give = live.slice(live.length - Math.floor(live.length / 2));
  if (give.length === 0 || give.length * (maxNewTokens - 1 - s.step) < MIN_HANDOFF_WORK) return;
  const h: RowHandoff = {
    rows: give.map((r) => s.rows[r]!),
    step: s.step,
    next: give.map((r) => s.next[r]!),
    promptLengths: give.map((r) => p.lens[s.rows[r]!]!),
    keyValid: give.map((r) => [...s.keyValid[r]!]),
    rngs: give.map((r) => p.rngs[s.rows[r]!]?.state() ?? null),
    cache: s.direct!.exportRows(give),
    Lmax: p.Lmax,
    maxNewTokens,
    temperature: p.temperature,
    topP: p.topP,
    stopAtEos: p.stopAtEos,
  };
  keepRows(s, range(give[0]!));
  handoff.send(h);
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
