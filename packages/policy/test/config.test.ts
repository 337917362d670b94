import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, configToJson, eosIds, parseModelConfig, readModelConfig, tinyConfig } from '../src/index.ts';
import { tempDir } from './helpers.ts';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());

/** Qwen2.5-0.5B's config.json, as published. */
const QWEN25_05B = {
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

const LLAMA = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 32000,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  rope_scaling: null,
  max_position_embeddings: 2048,
  tie_word_embeddings: false,
  attention_bias: false,
  mlp_bias: false,
  bos_token_id: 1,
  eos_token_id: 2,
};

describe('parseModelConfig', () => {
  test('reads a real Qwen2 config: GQA, head_dim derived, q/k/v biases implied, unknown fields kept', () => {
    const c = parseModelConfig(QWEN25_05B);
    expect(c.model_type).toBe('qwen2');
    expect(c.num_key_value_heads).toBe(2);
    expect(c.head_dim).toBe(64);
    expect(c.attention_bias).toBe(true);
    expect(c.tie_word_embeddings).toBe(true);
    expect(c.rope_theta).toBe(1e6);
    expect((c as Record<string, unknown>).sliding_window).toBe(32768);
    expect(eosIds(c)).toEqual([151643]);
  });

  test('reads a Llama config: no biases by default, explicit head_dim honoured, eos list', () => {
    const c = parseModelConfig({ ...LLAMA, head_dim: 16, eos_token_id: [2, 3] });
    expect(c.attention_bias).toBe(false);
    expect(c.head_dim).toBe(16);
    expect(eosIds(c)).toEqual([2, 3]);
    expect(parseModelConfig({ ...LLAMA, attention_bias: undefined }).attention_bias).toBe(false);
  });

  test('fills defaults and writes back an HF config that parses to the same thing', () => {
    const c = tinyConfig({ vocabSize: 50 });
    expect(c).toMatchObject({ hidden_size: 128, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 512, head_dim: 32 });
    const json = configToJson(c);
    expect(json.architectures).toEqual(['Qwen2ForCausalLM']);
    expect(json.rope_scaling).toBeNull();
    expect(parseModelConfig(JSON.parse(JSON.stringify(json)))).toEqual(c);
    const { num_key_value_heads: _kv, head_dim: _hd, ...minimal } = { ...QWEN25_05B, head_dim: undefined };
    expect(parseModelConfig(minimal).num_key_value_heads).toBe(14);
  });

  test('unknown model_type names the file and the field', () => {
    expect(() => parseModelConfig({ ...QWEN25_05B, model_type: 'gpt2' }, 'x/config.json')).toThrow(
      /x\/config\.json: field model_type: unsupported model type "gpt2"/,
    );
  });

  test('non-null rope_scaling names the file and the field', () => {
    expect(() => parseModelConfig({ ...LLAMA, rope_scaling: { rope_type: 'llama3', factor: 8 } }, 'm/config.json')).toThrow(
      /m\/config\.json: field rope_scaling: must be null/,
    );
  });

  test('other invalid fields are named', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...QWEN25_05B, hidden_size: undefined }, /field hidden_size/],
      [{ ...QWEN25_05B, num_key_value_heads: 3 }, /field num_key_value_heads: num_attention_heads \(14\) must be a multiple/],
      [{ ...QWEN25_05B, hidden_size: 900 }, /field head_dim/],
      [{ ...QWEN25_05B, vocab_size: -5 }, /field vocab_size/],
      [{ ...QWEN25_05B, hidden_act: 'gelu' }, /field hidden_act/],
      [{ ...QWEN25_05B, use_sliding_window: true }, /field use_sliding_window/],
      [{ ...LLAMA, mlp_bias: true }, /field mlp_bias/],
      [{ ...QWEN25_05B, tie_word_embeddings: 'yes' }, /field tie_word_embeddings/],
    ];
    for (const [json, re] of cases) {
      expect(() => parseModelConfig(json, 'cfg.json')).toThrow(ConfigError);
      expect(() => parseModelConfig(json, 'cfg.json')).toThrow(re);
      expect(() => parseModelConfig(json, 'cfg.json')).toThrow(/^cfg\.json: /);
    }
  });
});

describe('readModelConfig', () => {
  test('reads a file', async () => {
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify(QWEN25_05B));
    expect((await readModelConfig(path)).hidden_size).toBe(896);
  });
  test('missing file and invalid JSON name the file', async () => {
    const missing = join(dir, 'missing', 'config.json');
    await expect(readModelConfig(missing)).rejects.toThrow(missing);
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{"model_type": "qwen2",');
    await expect(readModelConfig(bad)).rejects.toThrow(new RegExp(`${bad}: invalid JSON`));
  });
});
