import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QWEN25_05B } from './hf-fixtures.ts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, configToJson, eosIds, parseModelConfig, readModelConfig, tinyConfig } from '../src/index.ts';
import { tempDir } from './helpers.ts';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());


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

  test('rope scaling: linear and llama3 are read; other types and incomplete fields are refused, naming the field', () => {
    const llama3 = { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    expect(parseModelConfig({ ...LLAMA, rope_scaling: llama3 }).rope_scaling).toEqual(llama3);
    expect(parseModelConfig({ ...LLAMA, rope_scaling: { type: 'linear', factor: 2 } }).rope_scaling).toEqual({ rope_type: 'linear', factor: 2 });
    expect(parseModelConfig({ ...LLAMA, rope_scaling: { rope_type: 'default' } }).rope_scaling).toBeNull();
    // transformers v5 moves rope_theta (and the scaling) into rope_parameters
    const v5 = parseModelConfig({ ...LLAMA, rope_theta: undefined, rope_scaling: undefined, rope_parameters: { rope_type: 'default', rope_theta: 500000 } });
    expect([v5.rope_theta, v5.rope_scaling]).toEqual([500000, null]);
    expect(configToJson(v5)).toMatchObject({ rope_theta: 500000, rope_scaling: null });
    expect(configToJson(v5)).not.toHaveProperty('rope_parameters');
    const cases: [unknown, RegExp][] = [
      [{ rope_type: 'yarn', factor: 4 }, /m\/config\.json: field rope_scaling\.rope_type: rope scaling "yarn" is not implemented/],
      [{ type: 'dynamic', factor: 2 }, /field rope_scaling\.rope_type: rope scaling "dynamic" is not implemented/],
      [{ rope_type: 'llama3', factor: 8 }, /field rope_scaling\.low_freq_factor: must be a positive number/],
      [{ rope_type: 'linear' }, /field rope_scaling\.factor/],
      [{ rope_type: 'linear', factor: 2, attention_factor: 0.5 }, /field rope_scaling\.attention_factor/],
      ['linear', /field rope_scaling: must be an object or null/],
    ];
    for (const [rs, re] of cases) {
      expect(() => parseModelConfig({ ...LLAMA, rope_scaling: rs }, 'm/config.json')).toThrow(ConfigError);
      expect(() => parseModelConfig({ ...LLAMA, rope_scaling: rs }, 'm/config.json')).toThrow(re);
    }
    expect(() => parseModelConfig({ ...LLAMA, rope_parameters: { rope_type: 'longrope', factor: 2 } }, 'm/config.json')).toThrow(
      /field rope_parameters\.rope_type: rope scaling "longrope" is not implemented/,
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
      [{ ...LLAMA, mlp_bias: true }, /field mlp_bias: MLP biases are not implemented/],
      [{ ...LLAMA, attention_dropout: 0.1 }, /field attention_dropout: attention dropout is not implemented/],
      [{ ...QWEN25_05B, layer_types: Array(24).fill('sliding_attention') }, /field layer_types\.0: only "full_attention"/],
      [{ ...QWEN25_05B, layer_types: ['full_attention'] }, /field layer_types: has 1 entries for 24 layers/],
      [{ ...LLAMA, partial_rotary_factor: 0.5 }, /field partial_rotary_factor/],
      [{ ...LLAMA, num_attention_heads: 6, num_key_value_heads: 4 }, /field num_key_value_heads/],
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
