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

const schema = z
  .looseObject({
    model_type: z.enum(['qwen2', 'llama']),
    architectures: z.array(z.string()).optional(),
    vocab_size: positiveInt,
    hidden_size: positiveInt,
    intermediate_size: positiveInt,
    num_hidden_layers: positiveInt,
    num_attention_heads: positiveInt,
    num_key_value_heads: positiveInt.optional(),
    head_dim: positiveInt.nullish(),
    rms_norm_eps: z.number().positive().default(1e-6),
    rope_theta: z.number().positive().default(10000),
    rope_scaling: z.null().optional(),
    max_position_embeddings: positiveInt.default(2048),
    tie_word_embeddings: z.boolean().default(false),
    attention_bias: z.boolean().optional(),
    mlp_bias: z.literal(false).optional(),
    hidden_act: z.literal('silu').optional(),
    use_sliding_window: z.literal(false).optional(),
    bos_token_id: tokenIds.nullish(),
    eos_token_id: tokenIds.nullish(),
    pad_token_id: z.number().int().nonnegative().nullish(),
    torch_dtype: z.string().optional(),
  })
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
  });

/** A validated config, with defaults filled in (attention_bias, num_key_value_heads and head_dim resolved). */
export type ModelConfig = z.output<typeof schema> & {
  num_key_value_heads: number;
  head_dim: number;
  attention_bias: boolean;
};

/** Input accepted by {@link parseModelConfig}: a config.json object (fields with defaults may be left out). */
export type ModelConfigInput = z.input<typeof schema>;

export class ConfigError extends EmpoError {
  override name = 'ConfigError';
}

/**
 * Validate a parsed config.json. `source` (a file name) is named in every error.
 * Throws {@link ConfigError} naming the file and the offending field.
 */
export function parseModelConfig(json: unknown, source = 'config.json'): ModelConfig {
  if (json !== null && typeof json === 'object' && 'model_type' in json) {
    const mt = (json as { model_type: unknown }).model_type;
    if (mt !== 'qwen2' && mt !== 'llama') {
      throw new ConfigError(`${source}: field model_type: unsupported model type ${JSON.stringify(mt)} (supported: "qwen2", "llama")`);
    }
  }
  if (json !== null && typeof json === 'object' && 'rope_scaling' in json) {
    const rs = (json as { rope_scaling: unknown }).rope_scaling;
    if (rs !== null) {
      throw new ConfigError(`${source}: field rope_scaling: must be null (rope scaling is not supported), got ${JSON.stringify(rs)}`);
    }
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `field ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`${source}: invalid model config: ${issues.join('; ')}`);
  }
  const c = r.data;
  return {
    ...c,
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
  return {
    ...c,
    architectures: c.architectures ?? [arch],
    rope_scaling: null,
    hidden_act: 'silu',
    torch_dtype: torchDtype ?? c.torch_dtype ?? 'float32',
  };
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
