/**
 * An independent, loop-based float64 implementation of the Hugging Face Qwen2 / Llama forward pass
 * (transformers' modeling_qwen2.py / modeling_llama.py), written from the formulas, sharing no code with
 * src/. Weights are HF-named and HF-laid-out (Linear weights [out, in]).
 *
 *   h = embed[ids]
 *   per layer: h += o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))),  n = rms(h) * input_layernorm
 *              h += down_proj(silu(gate_proj(m)) * up_proj(m)),                  m = rms(h) * post_attention_layernorm
 *   logits = lm_head(rms(h) * norm)                 (lm_head = embed when tie_word_embeddings)
 *   rms(x) = x / sqrt(mean(x^2) + eps); rope(x) = x cos + rotate_half(x) sin, rotate_half([a, b]) = [-b, a];
 *   attention: causal, softmax(q k^T / sqrt(head_dim)), query head h uses kv head floor(h / (H / Hkv)).
 */

export interface RefTensor {
  shape: number[];
  data: ArrayLike<number>;
}

/** The config fields the reference reads (HF names; defaults as transformers'). */
export interface RefConfig {
  model_type: 'qwen2' | 'llama';
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  head_dim?: number;
  rms_norm_eps?: number;
  rope_theta?: number;
  rope_scaling?: null | { rope_type?: string; type?: string; factor: number; low_freq_factor?: number; high_freq_factor?: number; original_max_position_embeddings?: number };
  tie_word_embeddings?: boolean;
  attention_bias?: boolean;
}

type Vec = number[];

function linear(x: Vec, w: RefTensor, b?: RefTensor): Vec {
  const [out, inp] = w.shape as [number, number];
  const y: Vec = [];
  for (let o = 0; o < out; o++) {
    let s = b ? b.data[o]! : 0;
    for (let i = 0; i < inp; i++) s += w.data[o * inp + i]! * x[i]!;
    y.push(s);
  }
  return y;
}

function rms(x: Vec, w: RefTensor, eps: number): Vec {
  const ms = x.reduce((a, v) => a + v * v, 0) / x.length;
  return x.map((v, i) => (v / Math.sqrt(ms + eps)) * w.data[i]!);
}

/** The rotary frequencies, transformers' `_compute_*_rope_parameters` in float64. */
export function refInvFreq(cfg: RefConfig): number[] {
  const hd = cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads;
  const theta = cfg.rope_theta ?? 10000;
  const base = Array.from({ length: hd / 2 }, (_, j) => 1 / Math.pow(theta, (2 * j) / hd));
  const rs = cfg.rope_scaling;
  const type = rs ? (rs.rope_type ?? rs.type) : 'default';
  if (!rs || type === 'default') return base;
  if (type === 'linear') return base.map((f) => f / rs.factor);
  if (type !== 'llama3') throw new Error(`reference: rope type ${type}`);
  const old = rs.original_max_position_embeddings!;
  const lowWavelen = old / rs.low_freq_factor!;
  const highWavelen = old / rs.high_freq_factor!;
  return base.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / rs.factor;
    const smooth = (old / wavelen - rs.low_freq_factor!) / (rs.high_freq_factor! - rs.low_freq_factor!);
    return (1 - smooth) * (f / rs.factor) + smooth * f;
  });
}

function rope(x: Vec, pos: number, inv: number[]): Vec {
  const half = x.length / 2;
  const out = new Array<number>(x.length);
  for (let j = 0; j < half; j++) {
    const [c, s] = [Math.cos(pos * inv[j]!), Math.sin(pos * inv[j]!)];
    out[j] = x[j]! * c - x[j + half]! * s;
    out[j + half] = x[j + half]! * c + x[j]! * s;
  }
  return out;
}

const silu = (v: number) => v / (1 + Math.exp(-v));

/** logits [T][V] of one unpadded sequence. */
export function referenceLogits(cfg: RefConfig, w: ReadonlyMap<string, RefTensor>, ids: number[]): number[][] {
  const H = cfg.num_attention_heads;
  const Hkv = cfg.num_key_value_heads ?? H;
  const hd = cfg.head_dim ?? cfg.hidden_size / H;
  const eps = cfg.rms_norm_eps ?? 1e-6;
  const bias = cfg.attention_bias ?? cfg.model_type === 'qwen2';
  const G = H / Hkv;
  const inv = refInvFreq(cfg);
  const W = (n: string) => {
    const t = w.get(n);
    if (!t) throw new Error(`reference: no tensor ${n}`);
    return t;
  };
  const embed = W('model.embed_tokens.weight');
  const D = embed.shape[1]!;
  let xs = ids.map((id) => Array.from({ length: D }, (_, i) => embed.data[id * D + i]!));
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const b = (n: string) => (bias ? W(`${p}self_attn.${n}_proj.bias`) : undefined);
    const hs = xs.map((x) => rms(x, W(p + 'input_layernorm.weight'), eps));
    const heads = (v: Vec, n: number) => Array.from({ length: n }, (_, h) => v.slice(h * hd, (h + 1) * hd));
    const q = hs.map((h, t) => heads(linear(h, W(p + 'self_attn.q_proj.weight'), b('q')), H).map((v) => rope(v, t, inv)));
    const k = hs.map((h, t) => heads(linear(h, W(p + 'self_attn.k_proj.weight'), b('k')), Hkv).map((v) => rope(v, t, inv)));
    const v = hs.map((h) => heads(linear(h, W(p + 'self_attn.v_proj.weight'), b('v')), Hkv));
    const attn = q.map((qt, t) => {
      const out: Vec = [];
      for (let h = 0; h < H; h++) {
        const kv = Math.floor(h / G);
        const scores = Array.from({ length: t + 1 }, (_, s) => qt[h]!.reduce((a, qi, i) => a + qi * k[s]![kv]![i]!, 0) / Math.sqrt(hd));
        const m = Math.max(...scores);
        const e = scores.map((sc) => Math.exp(sc - m));
        const z = e.reduce((a, c) => a + c, 0);
        for (let i = 0; i < hd; i++) out.push(e.reduce((a, es, s) => a + (es / z) * v[s]![kv]![i]!, 0));
      }
      return out;
    });
    xs = xs.map((x, t) => {
      const o = linear(attn[t]!, W(p + 'self_attn.o_proj.weight'));
      const h1 = x.map((xi, i) => xi + o[i]!);
      const n = rms(h1, W(p + 'post_attention_layernorm.weight'), eps);
      const g = linear(n, W(p + 'mlp.gate_proj.weight'));
      const u = linear(n, W(p + 'mlp.up_proj.weight'));
      const d = linear(
        g.map((gi, i) => silu(gi) * u[i]!),
        W(p + 'mlp.down_proj.weight'),
      );
      return h1.map((hi, i) => hi + d[i]!);
    });
  }
  const head = W(cfg.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  return xs.map((x) => linear(rms(x, W('model.norm.weight'), eps), head));
}

/** log_softmax(logits[t])[ids[t+1]] for each t: the teacher-forced log-probs of a sequence. */
export function referenceLogprobs(logits: number[][], next: number[]): number[] {
  return next.map((id, t) => {
    const z = logits[t]!;
    const m = z.reduce((a, v) => Math.max(a, v), -Infinity);
    return z[id]! - m - Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
  });
}
