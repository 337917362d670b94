/**
 * Model configuration: the Hugging Face `config.json` of a Qwen2 (or Llama) causal LM.
 *
 * Field names are Hugging Face's (snake_case) so that a real checkpoint's config.json is read as is and a
 * config written here is a valid HF config. Unknown fields are kept (and written back) untouched.
 */
import { EmpoError } from '@empo/core';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';

const tokenIds = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative()).min(1)]);
const positiveInt = z.number().int().positive();
const positive = z.number().positive();

/**
 * Rotary scaling, as in `rope_scaling` (transformers v4) or `rope_parameters` (v5). Implemented: "default"
 * (none), "linear" (positions divided by `factor`) and "llama3" (Llama 3.1+ frequency-dependent scaling).
 * Any other type (dynamic, yarn, longrope, ...) is refused.
 */
export type RopeScaling =
  | { rope_type: 'linear'; factor: number }
  | { rope_type: 'llama3'; factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number };

const IMPLEMENTED_ROPE = ['default', 'linear', 'llama3'];

const shape = {
    model_type: z.enum(['qwen2', 'llama']),
    architectures: z.array(z.string()).optional(),
    vocab_size: positiveInt,
    hidden_size: positiveInt,
    intermediate_size: positiveInt,
    num_hidden_layers: positiveInt,
    num_attention_heads: positiveInt,
    num_key_value_heads: positiveInt.nullish(),
    head_dim: positiveInt.nullish(),
    rms_norm_eps: positive.default(1e-6),
    rope_theta: positive.default(10000),
    // Validated (and normalised) separately: see parseRope.
    rope_scaling: z.unknown().optional(),
    rope_parameters: z.unknown().optional(),
    max_position_embeddings: positiveInt.default(2048),
    tie_word_embeddings: z.boolean().default(false),
    attention_bias: z.boolean().optional(),
    attention_dropout: z.literal(0, { message: 'attention dropout is not implemented; must be 0' }).optional(),
    mlp_bias: z.literal(false, { message: 'MLP biases are not implemented; must be false' }).optional(),
    hidden_act: z.literal('silu', { message: 'only "silu" (SwiGLU) is implemented' }).optional(),
    use_sliding_window: z.literal(false, { message: 'sliding-window attention is not implemented; must be false' }).optional(),
    layer_types: z.array(z.literal('full_attention', { message: 'only "full_attention" layers are implemented' })).optional(),
    partial_rotary_factor: z.literal(1, { message: 'partial rotary embeddings are not implemented; must be 1' }).optional(),
    pretraining_tp: positiveInt.optional(), // a tensor-parallel slicing of the same computation: no effect on results
    bos_token_id: tokenIds.nullish(),
    eos_token_id: tokenIds.nullish(),
    pad_token_id: z.number().int().nonnegative().nullish(),
    torch_dtype: z.string().nullish(),
};

const schema = z
  .looseObject(shape)
  .superRefine((c, ctx) => {
    const kv = c.num_key_value_heads ?? c.num_attention_heads;
    if (c.num_attention_heads % kv !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['num_key_value_heads'],
        message: `num_attention_heads (${c.num_attention_heads}) must be a multiple of num_key_value_heads (${kv})`,
      });
    }
    const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
    if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['head_dim'],
        message: `head dimension must be an even integer, got ${headDim} (hidden_size / num_attention_heads or head_dim)`,
      });
    }
    if (c.layer_types && c.layer_types.length !== c.num_hidden_layers) {
      ctx.addIssue({ code: 'custom', path: ['layer_types'], message: `has ${c.layer_types.length} entries for ${c.num_hidden_layers} layers` });
    }
  });

/**
 * A validated config, with defaults filled in (attention_bias, num_key_value_heads, head_dim, rope_scaling
 * resolved; `rope_theta` taken from `rope_parameters` when a v5 config has it there).
 */
export type ModelConfig = Omit<z.output<z.ZodObject<typeof shape>>, 'rope_scaling' | 'rope_parameters' | 'num_key_value_heads' | 'head_dim'> & {
  /** Fields this code does not use (kept and written back). */
  [key: string]: unknown;
  num_key_value_heads: number;
  head_dim: number;
  attention_bias: boolean;
  /** null: plain RoPE. */
  rope_scaling: RopeScaling | null;
};

/** Input accepted by {@link parseModelConfig}: a config.json object (fields with defaults may be left out). */
export type ModelConfigInput = z.input<typeof schema>;

export class ConfigError extends EmpoError {
  override name = 'ConfigError';
}

/**
 * rope_scaling (v4) / rope_parameters (v5) -> the scaling to apply (null: none) and the rope_theta found in
 * rope_parameters, if any. `field` names the key in errors.
 */
function parseRope(raw: unknown, field: string, fail: (msg: string) => never): { scaling: RopeScaling | null; theta?: number } {
  if (raw === null || raw === undefined) return { scaling: null };
  if (typeof raw !== 'object' || Array.isArray(raw)) fail(`field ${field}: must be an object or null, got ${JSON.stringify(raw)}`);
  const r = raw as Record<string, unknown>;
  const type = r.rope_type ?? r.type ?? 'default';
  if (typeof type !== 'string' || !IMPLEMENTED_ROPE.includes(type)) {
    fail(`field ${field}.rope_type: rope scaling ${JSON.stringify(type)} is not implemented (implemented: ${IMPLEMENTED_ROPE.map((t) => `"${t}"`).join(', ')})`);
  }
  const num = (key: string, positiveOnly = true): number => {
    const v = r[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || (positiveOnly && v <= 0)) fail(`field ${field}.${key}: must be a positive number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  let theta: number | undefined;
  if (r.rope_theta !== undefined) theta = num('rope_theta');
  if (r.attention_factor !== undefined && r.attention_factor !== null && r.attention_factor !== 1) {
    fail(`field ${field}.attention_factor: only 1 is implemented, got ${JSON.stringify(r.attention_factor)}`);
  }
  if (type === 'default') return { scaling: null, theta };
  if (type === 'linear') return { scaling: { rope_type: 'linear', factor: num('factor') }, theta };
  const s = {
    rope_type: 'llama3' as const,
    factor: num('factor'),
    low_freq_factor: num('low_freq_factor'),
    high_freq_factor: num('high_freq_factor'),
    original_max_position_embeddings: num('original_max_position_embeddings'),
  };
  if (s.high_freq_factor <= s.low_freq_factor) fail(`field ${field}.high_freq_factor: must be greater than low_freq_factor`);
  return { scaling: s, theta };
}

/**
 * Validate a parsed config.json. `source` (a file name) is named in every error.
 * Throws {@link ConfigError} naming the file and the offending field. Fields that change the computation
 * but are not implemented (another model_type, rope scaling types other than linear / llama3, sliding
 * windows, MLP biases, other activations, attention dropout) are refused, never ignored.
 */
export function parseModelConfig(json: unknown, source = 'config.json'): ModelConfig {
  const fail = (msg: string): never => {
    throw new ConfigError(`${source}: ${msg}`);
  };
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail('invalid model config: not a JSON object');
  const obj = json as Record<string, unknown>;
  if ('model_type' in obj) {
    const mt = obj.model_type;
    if (mt !== 'qwen2' && mt !== 'llama') fail(`field model_type: unsupported model type ${JSON.stringify(mt)} (supported: "qwen2", "llama")`);
  }
  const v4 = parseRope(obj.rope_scaling, 'rope_scaling', fail);
  const v5 = parseRope(obj.rope_parameters, 'rope_parameters', fail);
  if (v4.scaling && v5.scaling) fail('fields rope_scaling and rope_parameters: give the rope scaling in one of them only');
  const r = schema.safeParse(json);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `field ${i.path.join('.') || '(root)'}: ${i.message}`);
    return fail(`invalid model config: ${issues.join('; ')}`);
  }
  const c = r.data;
  return {
    ...c,
    rope_theta: v5.theta ?? v4.theta ?? c.rope_theta,
    rope_scaling: v4.scaling ?? v5.scaling,
    num_key_value_heads: c.num_key_value_heads ?? c.num_attention_heads,
    head_dim: c.head_dim ?? c.hidden_size / c.num_attention_heads,
    // Qwen2 always has q/k/v biases (its config has no such field); Llama defaults to none.
    attention_bias: c.attention_bias ?? c.model_type === 'qwen2',
  };
}

/** Read and validate `<path>` (a config.json). Errors name the file. */
export async function readModelConfig(path: string): Promise<ModelConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`${path}: cannot read model config: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: invalid JSON: ${(e as Error).message}`);
  }
  return parseModelConfig(json, path);
}

/** The config.json object to write (HF field names; architectures filled in if missing). */
export function configToJson(c: ModelConfig, torchDtype?: string): Record<string, unknown> {
  const arch = c.model_type === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM';
  const out: Record<string, unknown> = {
    ...c,
    architectures: c.architectures ?? [arch],
    rope_scaling: c.rope_scaling,
    hidden_act: 'silu',
    torch_dtype: torchDtype ?? c.torch_dtype ?? 'float32',
  };
  // A v5 config's rope_parameters would repeat (or contradict) rope_theta / rope_scaling: write the v4 fields,
  // which both transformers v4 and v5 read.
  delete out.rope_parameters;
  return out;
}

/** EOS ids of a config as a list (HF allows a single id or a list). */
export function eosIds(c: { eos_token_id?: number | number[] | null }): number[] {
  const e = c.eos_token_id;
  return e == null ? [] : Array.isArray(e) ? e : [e];
}

/** Sizes for a small Qwen2 model; everything else gets Qwen2 defaults. */
export interface TinyConfigOptions {
  vocabSize: number;
  hiddenSize?: number;
  intermediateSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  headDim?: number;
  maxPositions?: number;
  ropeTheta?: number;
  tieWordEmbeddings?: boolean;
  attentionBias?: boolean;
  bosId?: number | null;
  eosId?: number | null;
  padId?: number | null;
}

/** A valid qwen2 config for a small model (defaults: d=128, 4 layers, 4 heads, MLP 512, tied embeddings). */
export function tinyConfig(o: TinyConfigOptions): ModelConfig {
  return parseModelConfig({
    model_type: 'qwen2',
    architectures: ['Qwen2ForCausalLM'],
    vocab_size: o.vocabSize,
    hidden_size: o.hiddenSize ?? 128,
    intermediate_size: o.intermediateSize ?? 512,
    num_hidden_layers: o.numLayers ?? 4,
    num_attention_heads: o.numHeads ?? 4,
    num_key_value_heads: o.numKvHeads ?? o.numHeads ?? 4,
    ...(o.headDim !== undefined ? { head_dim: o.headDim } : {}),
    rms_norm_eps: 1e-6,
    rope_theta: o.ropeTheta ?? 10000,
    rope_scaling: null,
    max_position_embeddings: o.maxPositions ?? 1024,
    tie_word_embeddings: o.tieWordEmbeddings ?? true,
    attention_bias: o.attentionBias ?? true,
    hidden_act: 'silu',
    use_sliding_window: false,
    bos_token_id: o.bosId ?? null,
    eos_token_id: o.eosId ?? null,
    pad_token_id: o.padId ?? null,
    torch_dtype: 'float32',
  });
}
