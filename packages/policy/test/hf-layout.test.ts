/**
 * Issue 3 acceptance: model folders written by hand in the Hugging Face layout (an implementation
 * independent of src/: test/hf-fixtures.ts) load here and give the logits of the Qwen2 / Llama formulas
 * (test/reference.ts, float64) to 1e-4 with float32 weights and 2e-2 with bf16 weights; a checkpoint
 * written by this project and read back gives identical logits; KV-cache generation equals uncached
 * generation for both layouts with grouped-query attention. Backend: cpu.
 */
import * as tf from '@tensorflow/tfjs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { HFTokenizer, parseModelConfig, Policy, readSafetensors } from '../src/index.ts';
import { maxAbsDiff, tempDir, withBackend } from './helpers.ts';
import { bpeTokenizerJson, CHATML_TEMPLATE, fromBf16Bits, randomHFWeights, roundTo, toBf16Bits, writeHFFolder, type Dtype, type Tensor } from './hf-fixtures.ts';
import { referenceLogits, type RefConfig } from './reference.ts';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  await withBackend('cpu');
  ({ dir, cleanup } = await tempDir());
});
afterAll(() => cleanup());

const QWEN_TOKENIZER = bpeTokenizerJson({ specials: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] });
const LLAMA_TOKENIZER = bpeTokenizerJson({ specials: ['<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>'], bos: '<|begin_of_text|>' });

/** A Qwen2.5-style config.json (every field a real one has), scaled down: GQA 4/2, q/k/v biases, tied embeddings. */
const QWEN2 = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: QWEN_TOKENIZER.ids.get('<|endoftext|>'),
  eos_token_id: QWEN_TOKENIZER.ids.get('<|endoftext|>'),
  hidden_act: 'silu',
  hidden_size: 32,
  initializer_range: 0.02,
  intermediate_size: 48,
  max_position_embeddings: 32768,
  max_window_layers: 2,
  model_type: 'qwen2',
  num_attention_heads: 4,
  num_hidden_layers: 2,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.43.1',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 300,
};

/** A Llama-3.2-style config.json, scaled down: GQA 6/2, explicit head_dim (8, not 24/6), llama3 rope scaling, untied lm_head. */
const LLAMA = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: LLAMA_TOKENIZER.ids.get('<|begin_of_text|>'),
  eos_token_id: [LLAMA_TOKENIZER.ids.get('<|end_of_text|>'), LLAMA_TOKENIZER.ids.get('<|eot_id|>')],
  head_dim: 8,
  hidden_act: 'silu',
  hidden_size: 24,
  initializer_range: 0.02,
  intermediate_size: 40,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 6,
  num_hidden_layers: 2,
  num_key_value_heads: 2,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  // original_max 64 with head_dim 8: one frequency kept, one interpolated, two divided by the factor
  rope_scaling: { factor: 8.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 64, rope_type: 'llama3' },
  rope_theta: 500000.0,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  transformers_version: '4.45.0',
  use_cache: true,
  vocab_size: 290,
};

interface Layout {
  name: string;
  config: Record<string, unknown>;
  tokenizer: ReturnType<typeof bpeTokenizerJson>;
  tokenizerConfig: Record<string, unknown>;
  shards: number;
  scale: number;
}

const LAYOUTS: Layout[] = [
  {
    name: 'qwen2',
    config: QWEN2,
    tokenizer: QWEN_TOKENIZER,
    tokenizerConfig: { bos_token: null, eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', add_bos_token: false, chat_template: CHATML_TEMPLATE },
    shards: 1,
    scale: 0.12,
  },
  {
    name: 'llama',
    config: LLAMA,
    tokenizer: LLAMA_TOKENIZER,
    tokenizerConfig: { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' },
    shards: 3,
    scale: 0.12,
  },
];

const TEXTS = ['what is 12+30? answer: 42', 'the answer: 7'];

async function build(l: Layout, dtype: Dtype, tag: string): Promise<{ dir: string; weights: Map<string, Tensor> }> {
  const d = join(dir, `${l.name}-${dtype}-${tag}`);
  const weights = randomHFWeights(l.config, l.name === 'qwen2' ? 11 : 12, l.scale);
  await writeHFFolder(d, { config: l.config, weights, dtype, shards: l.shards, tokenizer: l.tokenizer.json, tokenizerConfig: l.tokenizerConfig });
  return { dir: d, weights };
}

const ourLogits = (p: Policy, ids: number[]) => tf.tidy(() => (p.logits([ids]).arraySync() as number[][][])[0]!);

describe.each(LAYOUTS)('hand-built $name folder', (l) => {
  test.each(['F32', 'BF16', 'F16'] as const)('%s weights: logits equal the formulas', async (dtype) => {
    const { dir: d, weights } = await build(l, dtype, 'logits');
    const p = await Policy.load(d);
    expect(p.tokenizer).toBeInstanceOf(HFTokenizer);
    const stored = new Map([...weights].map(([n, t]) => [n, { shape: t.shape, data: roundTo(dtype, t.data) }]));
    for (const text of TEXTS) {
      const ids = p.encodePrompt(text);
      const got = ourLogits(p, ids);
      // the formulas on the values the file holds: float32 arithmetic vs float64
      const exact = referenceLogits(l.config as unknown as RefConfig, stored, ids);
      expect(maxAbsDiff(got, exact)).toBeLessThan(1e-4);
      // logits of the original float32 weights: the storage precision is the only difference
      const original = referenceLogits(l.config as unknown as RefConfig, weights, ids);
      expect(maxAbsDiff(got, original)).toBeLessThan(dtype === 'F32' ? 1e-4 : 2e-2);
      // a meaningful comparison: logits of a few units that differ across positions
      const spread = Math.max(...original.flat()) - Math.min(...original.flat());
      expect(spread).toBeGreaterThan(2);
      if (dtype === 'BF16') expect(maxAbsDiff(got, original)).toBeGreaterThan(1e-5); // really rounded
    }
    p.dispose();
  });

  test('tokenizer, special tokens and BOS follow the HF files', async () => {
    const { dir: d } = await build(l, 'F32', 'tok');
    const p = await Policy.load(d);
    const t = p.tokenizer;
    const ids = l.tokenizer.ids;
    if (l.name === 'qwen2') {
      expect([t.bosId, t.addBos, t.eosId, t.padId]).toEqual([null, false, ids.get('<|endoftext|>'), ids.get('<|endoftext|>')]);
      expect(p.encodePrompt(' what is 12')).toEqual(t.encode(' what is 12'));
      expect(t.encode(' what is 12')).toEqual([ids.get('Ġwhat'), ids.get('Ġis'), ids.get('Ġ'), ids.get('12')]);
      expect(t.encode('what')).toEqual([ids.get('w'), ids.get('ha'), ids.get('t')]);
      const chat = p.encodePrompt('what is 12', { chat: true });
      expect(t.decode(chat)).toBe('system\nYou are a helpful assistant.\nuser\nwhat is 12\nassistant\n');
      expect(chat.filter((i) => i === ids.get('<|im_start|>')).length).toBe(3);
    } else {
      // no add_bos_token in tokenizer_config.json: the TemplateProcessing post-processor says BOS
      expect([t.bosId, t.addBos, t.eosId]).toEqual([ids.get('<|begin_of_text|>'), true, ids.get('<|eot_id|>')]);
      expect(p.encodePrompt('what is 12')).toEqual([ids.get('<|begin_of_text|>'), ...t.encode('what is 12')]);
      expect([...p.stopIds].sort()).toEqual([ids.get('<|end_of_text|>'), ids.get('<|eot_id|>')].sort());
      expect(() => p.encodePrompt('x', { chat: true })).toThrow(/no chat template/);
    }
    expect(t.decode(t.encode('what is 12+30? ünïcödé ✓'))).toBe('what is 12+30? ünïcödé ✓');
    p.dispose();
  });

  test('KV-cache generation equals uncached generation (GQA), greedy and sampled', async () => {
    const { dir: d } = await build(l, 'F32', 'kv');
    const p = await Policy.load(d);
    // larger weights make greedy decoding sensitive to small numerical differences
    for (const v of p.variables()) if (v.shape.length === 2) v.assign(tf.tidy(() => tf.mul(v, 4)));
    const prompts = ['what', 'the answer: 12+30', 'is'].map((s) => p.encodePrompt(s));
    for (const opts of [
      { maxNewTokens: 30, temperature: 0, stopAtEos: false },
      { maxNewTokens: 30, temperature: 0.9, topP: 0.95, seed: 5, stopAtEos: false },
    ]) {
      const cached = p.generate(prompts, opts);
      const uncached = p.generateUncached(prompts, opts);
      expect(cached.tokens).toEqual(uncached.tokens);
      expect(maxAbsDiff(cached.logprobs, uncached.logprobs)).toBeLessThan(1e-4);
      expect(new Set(cached.tokens.flat()).size).toBeGreaterThan(5);
    }
    p.dispose();
  });

  test('saved by this project and read back: identical logits; F32, BF16 and sharded; HF files kept', async () => {
    const { dir: d } = await build(l, 'F32', 'save');
    const p = await Policy.load(d);
    const ids = p.encodePrompt(TEXTS[0]!);
    const before = ourLogits(p, ids);
    const out = join(dir, `${l.name}-resaved`);
    await p.save(out);
    const q = await Policy.load(out);
    expect(ourLogits(q, ids)).toEqual(before); // bit-identical
    expect({ ...q.config, torch_dtype: 'bfloat16' }).toEqual(p.config); // F32 weights now
    expect(await readFile(join(out, 'tokenizer.json'), 'utf8')).toBe(await readFile(join(d, 'tokenizer.json'), 'utf8'));
    const cfg = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ ...l.config, torch_dtype: 'float32' });
    const { torch_dtype: _a, ...reparsed } = parseModelConfig(cfg);
    const { torch_dtype: _b, ...original } = p.config;
    expect(reparsed).toEqual(original);
    q.dispose();

    // BF16: every stored value is the round-to-nearest-even bf16 of the float32 weight
    const bf = join(dir, `${l.name}-resaved-bf16`);
    await p.save(bf, { dtype: 'BF16' });
    const file = await readSafetensors(join(bf, 'model.safetensors'));
    const embed = p.namedVariables().get('model.embed_tokens.weight')!.dataSync();
    expect(file.dtypes.get('model.embed_tokens.weight')).toBe('BF16');
    expect(Array.from(file.tensors.get('model.embed_tokens.weight')!.data)).toEqual(Array.from(embed, (x) => fromBf16Bits(toBf16Bits(x))));
    expect(JSON.parse(await readFile(join(bf, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
    const r = await Policy.load(bf);
    expect(maxAbsDiff(ourLogits(r, ids), before)).toBeLessThan(2e-2);
    r.dispose();

    // sharded write: index.json + shards, as transformers names them
    const sh = join(dir, `${l.name}-resaved-sharded`);
    await p.save(sh, { maxShardBytes: 20_000 });
    const files = (await readdir(sh)).filter((f) => f.startsWith('model'));
    expect(files).toContain('model.safetensors.index.json');
    expect(files).not.toContain('model.safetensors');
    expect(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(1);
    const index = JSON.parse(await readFile(join(sh, 'model.safetensors.index.json'), 'utf8'));
    expect(Object.keys(index.weight_map).sort()).toEqual([...p.namedVariables().keys()].sort());
    expect(index.metadata.total_size).toBe(p.numParameters() * 4);
    const s = await Policy.load(sh);
    expect(ourLogits(s, ids)).toEqual(before);
    s.dispose();
    p.dispose();
  });
});
