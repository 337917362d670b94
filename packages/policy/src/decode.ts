/**
 * `generate`'s token steps on the wasm backend without the tfjs engine: the same kernels, called directly.
 *
 * A decoding step of the tfjs forward (model.ts) makes about 170 engine calls (a kernel lookup, a new tensor, its
 * bookkeeping and disposal each), which cost about 1.5 ms per step whatever the batch: most of a step at small
 * batches, and paid again by every worker thread that decodes part of a batch. `DirectDecoder` runs the very same
 * sequence of kernels (this package's SIMD matmul, RMSNorm, RoPE, copy and Add / Multiply kernels, and
 * tfjs-wasm's own Softmax and Sigmoid) on buffers allocated once per `generate` call, with the same arguments
 * and the same KV-cache segments ([prefix, recent], see `generate`), so every value, and each sampled token, has
 * the bits of the tfjs path (tested against it). It applies to models decoded through transposed weight copies
 * (small models; see decodeFromStoredWeights) with all of this package's kernel groups on; `generate` uses the
 * tfjs forward otherwise, and for the prefill.
 *
 * Shapes: B rows, D hidden, H heads, Hkv kv heads, G = H / Hkv, hd head dim, I intermediate, V vocab, P cached
 * positions in the prefix segment, R in the recent one, K = P + R + 1 keys of a step.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config.ts';
import { copyKernelsFor } from './kernels/copy.ts';
import { elementwiseKernelsFor } from './kernels/elementwise.ts';
import { fusedKernelsFor } from './kernels/fused.ts';
import { matmulKernelsFor } from './kernels/matmul.ts';
import { heapOf, wasmKernelsActive, type WasmBackendLike, type WasmFunction } from './kernels/runtime.ts';
import { invFreq, writeBiasRow, writeRopeRow, type NewKV, type Weights } from './model.ts';

/** What the decoder uses of tfjs-wasm's backend beyond WasmBackendLike: tensor ids and its C functions. */
interface DirectBackend extends WasmBackendLike {
  dataIdMap: { get(dataId: tf.DataId): { id: number } | undefined };
  wasm: WasmBackendLike['wasm'] & { cwrap(name: string, returns: null, args: string[]): WasmFunction };
}

let enabled = process.env.EMPO_DIRECT_DECODE !== '0';
let stepsRun = 0;

/** How many token steps DirectDecoder has run in this thread (for tests and benchmarks). */
export function directDecodeSteps(): number {
  return stepsRun;
}

/**
 * Turn the direct decoding steps off (every step through the tfjs forward, as before they existed) or on
 * (default): for tests and benchmarks. The environment variable EMPO_DIRECT_DECODE=0 sets it off at start.
 */
export function setDirectDecode(on: boolean): void {
  enabled = on;
}

/** Whether `generate` can decode with DirectDecoder on these prepared weights now. */
export function directDecodeApplies(cfg: ModelConfig, w: Weights): boolean {
  if (!enabled || tf.getBackend() !== 'wasm') return false;
  if (!(['matmul', 'copy', 'fused', 'elementwise'] as const).every((g) => wasmKernelsActive(g))) return false;
  const be = tf.backend() as unknown as DirectBackend;
  if (!heapOf(be) || typeof be.wasm.cwrap !== 'function' || !be.dataIdMap) return false;
  if (cfg.head_dim % 8 !== 0 || w.layers.length !== cfg.num_hidden_layers) return false; // the fused RoPE; eagerly prepared layers
  const tensors = [w.embed, w.norm, w.lmHead, ...w.layers.flatMap((l) => [l.inputNorm, l.wq, l.wk, l.wv, l.bq, l.bk, l.bv, l.wo, l.postNorm, l.wGate, l.wUp, l.wDown])];
  return w.layers.every((l) => !l.outIn) && tensors.every((t) => t === null || t.dtype === 'float32');
}

/** One kind (keys or values) of one layer's cache: [prefix, recent] as `generate`'s extendCache keeps them. */
interface SegmentCache {
  /** [B, Hkv, P, hd]. */
  prefix: tf.Tensor;
  P: number;
  /** Two buffers of [B, Hkv, recentCap, hd] (capacity), written in turn; `recent[cur]` holds [B, Hkv, R, hd]. */
  recent: [tf.Tensor, tf.Tensor];
  cur: 0 | 1;
  R: number;
}

/**
 * A float32 tensor of zeros made on the wasm heap (tfjs-wasm's Fill kernel). `tf.zeros` would first build the
 * zeros as a JavaScript array and copy it over: about a megabyte of garbage per layer at each cache merge and
 * row drop, which took 27-44 ms of a 64-row call of 158-179 ms on the tiny default (5 ms now; BENCHMARKS.md).
 */
function heapZeros(shape: number[]): tf.Tensor {
  return tf.fill(shape, 0, 'float32');
}

/** Some rows' cache, as DirectDecoder.exportRows writes it and DirectDecoder.resume reads it. */
export interface DecoderRows {
  /** Positions in the prefix segment and in the recent one. */
  P: number;
  R: number;
  /** Per layer, keys then values: [n, Hkv, P, hd] then [n, Hkv, R, hd]. */
  data: Float32Array;
}

export interface DirectDecoderOptions {
  /** Rows of the batch. */
  rows: number;
  /** The most keys any step will attend to (prompt length with padding + new tokens). */
  maxKeys: number;
  /** Positions the recent segment collects before it is merged into the prefix (generate's RECENT_SEGMENT). */
  recentSegment: number;
}

/**
 * Decoding steps over a cache that starts as the prefill's keys and values (taken over: the decoder disposes
 * them). `step` returns the next logits as a view of the heap, valid until the next call.
 */
export class DirectDecoder {
  private readonly be: DirectBackend;
  private readonly mm: Record<string, WasmFunction>;
  private readonly fused: Record<string, WasmFunction>;
  private readonly copy: WasmFunction;
  private readonly ew: Record<string, WasmFunction>;
  private readonly softmax: WasmFunction;
  private readonly sigmoid: WasmFunction;
  private readonly inv: Float32Array;
  private B: number;
  private readonly cache: { k: SegmentCache; v: SegmentCache }[];
  /** Tensors the C functions read or write by id: attention scores and probabilities, the MLP's gate and sigmoid. */
  private readonly scores: tf.Tensor;
  private readonly probs: tf.Tensor;
  private gate: tf.Tensor;
  private sig: tf.Tensor;
  /** Everything else of a step, at fixed offsets (bytes) in one buffer. */
  private readonly scratch: tf.Tensor;
  private readonly at: Record<'x' | 'h' | 'hn' | 'out' | 'down' | 'q' | 'qr' | 'k' | 'kr' | 'v' | 'y' | 'part' | 'up' | 'act' | 'logits' | 'cos' | 'sin' | 'parts' | 'pbuf' | 'bias', number>;

  constructor(
    private readonly cfg: ModelConfig,
    private readonly w: Weights,
    prefill: NewKV,
    private readonly opts: DirectDecoderOptions,
  ) {
    this.be = tf.backend() as unknown as DirectBackend;
    this.mm = matmulKernelsFor(this.be);
    this.fused = fusedKernelsFor(this.be);
    this.copy = copyKernelsFor(this.be).copyBlocks!;
    this.ew = elementwiseKernelsFor(this.be);
    this.softmax = this.be.wasm.cwrap('Softmax', null, ['number', 'number', 'number', 'number']);
    this.sigmoid = this.be.wasm.cwrap('Sigmoid', null, ['number', 'number']);
    this.inv = invFreq(cfg);
    const B = (this.B = opts.rows);
    const { hidden_size: D, intermediate_size: I, vocab_size: V, head_dim: hd, num_attention_heads: H, num_key_value_heads: Hkv } = cfg;
    const recentFloats = B * Hkv * opts.recentSegment * hd;
    this.cache = prefill.k.map((k, i) => ({
      k: { prefix: k, P: k.shape[2], recent: [heapZeros([recentFloats]), heapZeros([recentFloats])], cur: 0, R: 0 },
      v: { prefix: prefill.v[i]!, P: k.shape[2], recent: [heapZeros([recentFloats]), heapZeros([recentFloats])], cur: 0, R: 0 },
    }));
    const keyed = B * H * opts.maxKeys;
    this.scores = heapZeros([keyed]);
    this.probs = heapZeros([keyed]);
    this.gate = heapZeros([B, I]);
    this.sig = heapZeros([B, I]);
    const sizes = {
      x: B * D, h: B * D, hn: B * D, out: B * D, down: B * D,
      q: B * H * hd, qr: B * H * hd, k: B * Hkv * hd, kr: B * Hkv * hd, v: B * Hkv * hd, y: B * H * hd, part: B * H * hd,
      up: B * I, act: B * I, logits: B * V, cos: B * hd, sin: B * hd, parts: keyed, pbuf: keyed, bias: keyed,
    };
    let floats = 0;
    const at = {} as Record<keyof typeof sizes, number>;
    for (const [name, n] of Object.entries(sizes) as [keyof typeof sizes, number][]) {
      at[name] = floats * 4; // relative until the buffer exists
      floats += Math.ceil(n / 4) * 4; // 16-byte aligned parts
    }
    this.scratch = heapZeros([floats]);
    const base = this.offset(this.scratch);
    this.at = Object.fromEntries(Object.entries(at).map(([k, v]) => [k, base + v])) as typeof at;
  }

  private offset(t: tf.Tensor): number {
    return this.be.getMemoryOffset(t.dataId);
  }

  private id(t: tf.Tensor): number {
    return this.be.dataIdMap.get(t.dataId)!.id;
  }

  private heap(): Float32Array {
    return new Float32Array(heapOf(this.be)!.buffer);
  }

  /**
   * One token per row: `tokens[r]` at rotary position `positions[r]`, attending to the cached keys marked in
   * `keyValid[r]` (cached positions + this one, as `forward`'s keyValid). Returns the logits [B, V].
   */
  step(tokens: readonly number[], positions: readonly number[], keyValid: readonly (readonly boolean[])[]): Float32Array {
    const { cfg, w, at, mm, ew, fused } = this;
    const B = this.B;
    const { hidden_size: D, intermediate_size: I, vocab_size: V, head_dim: hd, num_attention_heads: H, num_key_value_heads: Hkv } = cfg;
    const G = H / Hkv;
    const c0 = this.cache[0]!.k;
    const S = c0.P + c0.R;
    const K = S + 1;
    if (tokens.length !== B || positions.length !== B || keyValid.length !== B) throw new Error(`DirectDecoder.step: expected ${B} rows`);
    if (K > this.opts.maxKeys) throw new Error(`DirectDecoder.step: ${K} keys exceed the ${this.opts.maxKeys} planned`);
    stepsRun++;
    const heap = this.heap();
    const embed = this.offset(w.embed);
    for (let r = 0; r < B; r++) {
      const id = tokens[r]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`DirectDecoder.step: token id ${id} out of range [0, ${V})`);
      this.copy(embed + id * D * 4, at.x + r * D * 4, 1, 0, 0, D * 4);
    }
    // cos / sin [B, 1, 1, hd] as model.ts' ropeTables
    const cos = heap.subarray(at.cos >> 2);
    const sin = heap.subarray(at.sin >> 2);
    for (let r = 0; r < B; r++) writeRopeRow(this.inv, positions[r]!, cos, sin, r * hd);
    // attention bias [B, H, 1, K] (model.ts' attentionBias for one query, tiled over the heads)
    for (let b = 0; b < B; b++) {
      const valid = keyValid[b]!;
      if (valid.length !== K) throw new Error(`keyValid[${b}] has ${valid.length} entries, expected ${K}`);
      const row = (at.bias >> 2) + b * H * K;
      writeBiasRow(heap, row, K, S, valid);
      for (let h = 1; h < H; h++) heap.copyWithin(row + h * K, row, row + K);
    }
    const perBatch = B > 1 ? 1 : 0;
    const eps = cfg.rms_norm_eps;
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const L = w.layers[i]!;
      // attention
      fused.rmsNorm!(at.x, this.offset(L.inputNorm), at.hn, B, D, eps);
      this.linear(L.wq, L.bq, at.q, H * hd);
      this.linear(L.wk, L.bk, at.k, Hkv * hd);
      this.linear(L.wv, L.bv, at.v, Hkv * hd);
      fused.rope!(at.q, at.cos, at.sin, at.qr, B, 1, H, hd, perBatch, 1 / Math.sqrt(hd));
      fused.rope!(at.k, at.cos, at.sin, at.kr, B, 1, Hkv, hd, perBatch, 1);
      const { k: ck, v: cv } = this.cache[i]!;
      const keys = this.segments(ck, at.kr);
      const values = this.segments(cv, at.v);
      let offset = 0;
      let partAt = at.parts;
      for (const [ptr, n] of keys) {
        mm.bmmNT!(at.qr, ptr, partAt, B * Hkv, G, hd, n); // [B, Hkv, G, n]
        this.copy(partAt, this.offset(this.scores) + offset * 4, B * H, n * 4, K * 4, n * 4);
        partAt += B * H * n * 4;
        offset += n;
      }
      const scores = this.offset(this.scores);
      ew.add!(scores, at.bias, scores, 1, B * H * K);
      this.softmax(this.id(this.scores), this.id(this.probs), K, B * H);
      offset = 0;
      values.forEach(([ptr, n], s) => {
        this.copy(this.offset(this.probs) + offset * 4, at.pbuf, B * H, K * 4, n * 4, n * 4); // probs[..., offset : offset + n]
        mm.bmm!(at.pbuf, ptr, s === 0 ? at.y : at.part, B * Hkv, G, n, hd); // [B, Hkv, G, hd]
        if (s > 0) ew.add!(at.y, at.part, at.y, 1, B * H * hd);
        offset += n;
      });
      mm.bmm!(at.y, this.offset(L.wo), at.out, 1, B, H * hd, D);
      ew.add!(at.x, at.out, at.h, 1, B * D);
      this.extend(ck, at.kr);
      this.extend(cv, at.v);
      // MLP
      fused.rmsNorm!(at.h, this.offset(L.postNorm), at.hn, B, D, eps);
      const gate = this.offset(this.gate);
      mm.bmm!(at.hn, this.offset(L.wGate), gate, 1, B, D, I);
      mm.bmm!(at.hn, this.offset(L.wUp), at.up, 1, B, D, I);
      this.sigmoid(this.id(this.gate), this.id(this.sig));
      ew.mul!(gate, this.offset(this.sig), at.act, 1, B * I);
      ew.mul!(at.act, at.up, at.act, 1, B * I);
      mm.bmm!(at.act, this.offset(L.wDown), at.down, 1, B, I, D);
      ew.add!(at.h, at.down, at.x, 1, B * D);
    }
    fused.rmsNorm!(at.x, this.offset(w.norm), at.hn, B, D, eps);
    mm.bmm!(at.hn, this.offset(w.lmHead), at.logits, 1, B, D, V);
    return new Float32Array(heapOf(this.be)!.buffer, at.logits, B * V);
  }

  /** x [B, D] (normed, at hn) @ W [D, out] (+ bias) -> dst [B, out]. */
  private linear(wt: tf.Tensor, bias: tf.Tensor | null, dst: number, out: number): void {
    this.mm.bmm!(this.at.hn, this.offset(wt), dst, 1, this.B, this.cfg.hidden_size, out);
    if (bias) this.ew.add!(dst, this.offset(bias), dst, this.B, out);
  }

  /** A step's key (or value) segments as [heap pointer, positions]: prefix, recent (when not empty), this step's. */
  private segments(c: SegmentCache, current: number): [number, number][] {
    const segs: [number, number][] = [[this.offset(c.prefix), c.P]];
    if (c.R > 0) segs.push([this.offset(c.recent[c.cur]), c.R]);
    segs.push([current, 1]);
    return segs;
  }

  /** Append this step's keys (or values) [B, Hkv, 1, hd]: recent + new, merged into the prefix once it is full. */
  private extend(c: SegmentCache, current: number): void {
    const { head_dim: hd, num_key_value_heads: Hkv } = this.cfg;
    const rows = this.B * Hkv;
    const pos = hd * 4; // bytes per position
    const next = (1 - c.cur) as 0 | 1;
    const dst = this.offset(c.recent[next]);
    if (c.R > 0) this.copy(this.offset(c.recent[c.cur]), dst, rows, c.R * pos, (c.R + 1) * pos, c.R * pos);
    this.copy(current, dst + c.R * pos, rows, pos, (c.R + 1) * pos, pos);
    c.cur = next;
    c.R += 1;
    if (c.R < this.opts.recentSegment) return;
    const P = c.P + c.R;
    const merged = heapZeros([this.B, Hkv, P, hd]);
    const to = this.offset(merged);
    this.copy(this.offset(c.prefix), to, rows, c.P * pos, P * pos, c.P * pos);
    this.copy(dst, to + c.P * pos, rows, c.R * pos, P * pos, c.R * pos);
    c.prefix.dispose();
    c.prefix = merged;
    c.P = P;
    c.R = 0;
  }

  /**
   * The cached keys and values of rows `rows` (indices into the current rows), for a decoder in another thread
   * to go on from (`DirectDecoder.resume`): per layer, keys then values, each the prefix [n, Hkv, P, hd] then the
   * recent segment [n, Hkv, R, hd]. P and R are the same in every layer.
   */
  exportRows(rows: readonly number[]): DecoderRows {
    const { head_dim: hd, num_key_value_heads: Hkv } = this.cfg;
    const { P, R } = this.cache[0]!.k;
    const n = rows.length;
    const data = new Float32Array(this.cache.length * 2 * n * Hkv * (P + R) * hd);
    const heap = this.heap();
    let at = 0;
    const take = (src: number, positions: number) => {
      const floats = Hkv * positions * hd;
      for (const r of rows) {
        data.set(heap.subarray((src >> 2) + r * floats, (src >> 2) + (r + 1) * floats), at);
        at += floats;
      }
    };
    for (const layer of this.cache) {
      for (const c of [layer.k, layer.v]) {
        take(this.offset(c.prefix), c.P);
        if (c.R > 0) take(this.offset(c.recent[c.cur]), c.R);
      }
    }
    return { P, R, data };
  }

  /** A decoder over rows another decoder exported (exportRows), at the same point of their decoding. */
  static resume(cfg: ModelConfig, w: Weights, rows: DecoderRows, opts: DirectDecoderOptions): DirectDecoder {
    const { head_dim: hd, num_key_value_heads: Hkv, num_hidden_layers: layers } = cfg;
    const { P, R, data } = rows;
    const n = opts.rows;
    if (data.length !== layers * 2 * n * Hkv * (P + R) * hd) throw new Error(`DirectDecoder.resume: ${data.length} cached values for ${n} rows, expected ${layers * 2 * n * Hkv * (P + R) * hd}`);
    if (R >= opts.recentSegment) throw new Error(`DirectDecoder.resume: recent segment of ${R} positions (at most ${opts.recentSegment - 1})`);
    const part = (layer: number, kind: 0 | 1, recent: boolean) => {
      const start = (layer * 2 + kind) * n * Hkv * (P + R) * hd + (recent ? n * Hkv * P * hd : 0);
      return data.subarray(start, start + n * Hkv * (recent ? R : P) * hd);
    };
    const prefill: NewKV = {
      k: Array.from({ length: layers }, (_, i) => tf.tensor4d(part(i, 0, false), [n, Hkv, P, hd])),
      v: Array.from({ length: layers }, (_, i) => tf.tensor4d(part(i, 1, false), [n, Hkv, P, hd])),
    };
    const decoder = new DirectDecoder(cfg, w, prefill, opts);
    if (R > 0) {
      const heap = decoder.heap();
      decoder.cache.forEach((layer, i) => {
        ([layer.k, layer.v] as const).forEach((c, kind) => {
          heap.set(part(i, kind as 0 | 1, true), decoder.offset(c.recent[0]) >> 2);
          c.R = R;
        });
      });
    }
    return decoder;
  }

  /**
   * Keep only the rows `live` (indices into the current rows, ascending) of the cache. When they are the first
   * rows, the cache stays where it is (rows are its outermost dimension): the batch just gets shorter.
   */
  dropRows(live: readonly number[]): void {
    const { head_dim: hd, num_key_value_heads: Hkv, intermediate_size: I } = this.cfg;
    const rowBytes = (n: number) => Hkv * n * hd * 4;
    const prefix = live.every((r, i) => r === i);
    for (const layer of this.cache) {
      if (prefix) break;
      for (const c of [layer.k, layer.v]) {
        const kept = heapZeros([live.length, Hkv, c.P, hd]);
        this.gather(this.offset(c.prefix), this.offset(kept), live, rowBytes(c.P));
        c.prefix.dispose();
        c.prefix = kept;
        if (c.R > 0) {
          const next = (1 - c.cur) as 0 | 1;
          this.gather(this.offset(c.recent[c.cur]), this.offset(c.recent[next]), live, rowBytes(c.R));
          c.cur = next;
        }
      }
    }
    this.B = live.length;
    // Sigmoid runs over its whole input tensor: keep these at the batch's size.
    tf.dispose([this.gate, this.sig]);
    this.gate = heapZeros([this.B, I]);
    this.sig = heapZeros([this.B, I]);
  }

  private gather(src: number, dst: number, rows: readonly number[], bytes: number): void {
    rows.forEach((r, i) => this.copy(src + r * bytes, dst + i * bytes, 1, 0, 0, bytes));
  }

  dispose(): void {
    tf.dispose([this.scores, this.probs, this.gate, this.sig, this.scratch, ...this.cache.flatMap(({ k, v }) => [k.prefix, ...k.recent, v.prefix, ...v.recent])]);
  }
}
