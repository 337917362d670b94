/**
 * Policy: checkpoint folder I/O (atomic save, load errors), variables, clone. Backend: cpu.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CharTokenizer, Policy, readSafetensors, weightSpecs, writeSafetensors } from '../src/index.ts';
import { maxAbsDiff, randomPolicy, sharpPolicy, tempDir, withBackend } from './helpers.ts';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  await withBackend('cpu');
  ({ dir, cleanup } = await tempDir());
});
afterAll(() => cleanup());

const SAMPLE = ['what is 12+30?', '7*6=42'];
const logitsOf = (p: Policy) => tf.tidy(() => p.logits(SAMPLE.map((s) => p.tokenizer.encode(s))).arraySync());

describe('save / load', () => {
  test('a saved and loaded checkpoint gives identical logits and generations', async () => {
    const p = sharpPolicy({ seed: 1, tieWordEmbeddings: false });
    const d = join(dir, 'ckpt');
    await p.save(d);
    expect((await readdir(d)).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const q = await Policy.load(d);
    expect(q.config).toEqual(p.config);
    expect((q.tokenizer as CharTokenizer).tokens).toEqual((p.tokenizer as CharTokenizer).tokens);
    expect(logitsOf(q)).toEqual(logitsOf(p)); // bit-identical (F32)
    const opt = { maxNewTokens: 12, temperature: 1, seed: 9 };
    const prompts = SAMPLE.map((s) => p.tokenizer.encode(s));
    expect(q.generate(prompts, opt)).toEqual(p.generate(prompts, opt));
    p.dispose();
    q.dispose();
  });

  test('model.safetensors holds Hugging Face names and [out, in] layouts; tied models have no lm_head', async () => {
    const p = randomPolicy({ numHeads: 4, numKvHeads: 2, hiddenSize: 32, intermediateSize: 48 });
    const d = join(dir, 'layout');
    await p.save(d);
    const f = await readSafetensors(join(d, 'model.safetensors'));
    expect(f.metadata.format).toBe('pt');
    expect(f.tensors.get('model.embed_tokens.weight')!.shape).toEqual([p.config.vocab_size, 32]);
    expect(f.tensors.get('model.layers.0.self_attn.q_proj.weight')!.shape).toEqual([32, 32]);
    expect(f.tensors.get('model.layers.0.self_attn.k_proj.weight')!.shape).toEqual([16, 32]); // 2 kv heads x 8
    expect(f.tensors.get('model.layers.0.self_attn.k_proj.bias')!.shape).toEqual([16]);
    expect(f.tensors.get('model.layers.1.mlp.down_proj.weight')!.shape).toEqual([32, 48]);
    expect(f.tensors.get('model.layers.1.mlp.gate_proj.weight')!.shape).toEqual([48, 32]);
    expect(f.tensors.has('lm_head.weight')).toBe(false);
    expect([...f.tensors.keys()].sort()).toEqual(weightSpecs(p.config).map((s) => s.name).sort());
    // values equal the variables (the forward pass transposes internally, the file does not)
    const q = p.namedVariables().get('model.layers.0.self_attn.k_proj.weight')!;
    expect(Array.from(f.tensors.get('model.layers.0.self_attn.k_proj.weight')!.data)).toEqual(Array.from(q.dataSync()));
    const cfg = JSON.parse(await readFile(join(d, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], torch_dtype: 'float32', num_key_value_heads: 2 });
    const gen = JSON.parse(await readFile(join(d, 'generation_config.json'), 'utf8'));
    expect(gen.eos_token_id).toEqual([p.tokenizer.eosId]);
    p.dispose();
  });

  test('BF16 checkpoints are half the size and load to nearly the same logits', async () => {
    const p = randomPolicy({ seed: 2 });
    await p.save(join(dir, 'f32'));
    await p.save(join(dir, 'bf16'), { dtype: 'BF16' });
    const [a, b] = await Promise.all(['f32', 'bf16'].map((n) => stat(join(dir, n, 'model.safetensors'))));
    expect(b!.size / a!.size).toBeLessThan(0.52);
    expect(JSON.parse(await readFile(join(dir, 'bf16', 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
    const q = await Policy.load(join(dir, 'bf16'));
    const d = maxAbsDiff(logitsOf(q), logitsOf(p));
    expect(d).toBeGreaterThan(0);
    expect(d).toBeLessThan(2e-3);
    p.dispose();
    q.dispose();
  });

  test('save replaces an existing folder atomically and leaves no temporary folders', async () => {
    const d = join(dir, 'replace', 'model');
    const p1 = randomPolicy({ seed: 3 });
    const p2 = randomPolicy({ seed: 4 });
    await p1.save(d);
    await writeFile(join(d, 'stale.txt'), 'old');
    await p2.save(d);
    expect(await readdir(d)).not.toContain('stale.txt');
    expect(await readdir(dirname(d))).toEqual(['model']);
    const q = await Policy.load(d);
    expect(logitsOf(q)).toEqual(logitsOf(p2));
    // a trailing slash names the same folder
    await p1.save(d + '/');
    expect(await readdir(dirname(d))).toEqual(['model']);
    [p1, p2, q].forEach((x) => x.dispose());
  });

  test('a save that fails midway leaves the previous checkpoint untouched and no temporary folder', async () => {
    class FailingTokenizer extends CharTokenizer {
      override async save(): Promise<void> {
        throw new Error('disk full');
      }
    }
    const good = randomPolicy({ seed: 5 });
    const d = join(dir, 'failing', 'model');
    await good.save(d);
    const before = await readFile(join(d, 'model.safetensors'));
    const tok = good.tokenizer as CharTokenizer;
    const other = randomPolicy({ seed: 6 });
    const bad = Policy.fromWeights(good.config, new FailingTokenizer(tok.tokens, tok.specials), await other.hostWeights());
    other.dispose();
    await expect(bad.save(d)).rejects.toThrow('disk full');
    expect(await readdir(dirname(d))).toEqual(['model']);
    expect(Buffer.compare(await readFile(join(d, 'model.safetensors')), before)).toBe(0);
    good.dispose();
    bad.dispose();
  });

  test('sharded checkpoints (model.safetensors.index.json) load', async () => {
    const p = randomPolicy({ seed: 7 });
    const d = join(dir, 'sharded');
    await p.save(d);
    const host = [...(await p.hostWeights())];
    await rm(join(d, 'model.safetensors'));
    const half = Math.floor(host.length / 2);
    await writeSafetensors(join(d, 'model-00001-of-00002.safetensors'), host.slice(0, half));
    await writeSafetensors(join(d, 'model-00002-of-00002.safetensors'), host.slice(half));
    const weightMap = Object.fromEntries(host.map(([n], i) => [n, i < half ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors']));
    await writeFile(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const q = await Policy.load(d);
    expect(logitsOf(q)).toEqual(logitsOf(p));
    p.dispose();
    q.dispose();
  });
});

describe('load errors name the missing or bad file', () => {
  async function checkpoint(name: string): Promise<string> {
    const d = join(dir, 'errors', name);
    const p = randomPolicy({ seed: 8 });
    await p.save(d);
    p.dispose();
    return d;
  }

  test('missing files', async () => {
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json']) {
      const d = await checkpoint(`missing-${file}`);
      await rm(join(d, file));
      await expect(Policy.load(d)).rejects.toThrow(join(d, file));
    }
  });

  test('bad config, truncated weights, wrong shapes, missing and unexpected tensors', async () => {
    const d = await checkpoint('bad');
    const cfgPath = join(d, 'config.json');
    const cfg = JSON.parse(await readFile(cfgPath, 'utf8'));
    await writeFile(cfgPath, JSON.stringify({ ...cfg, rope_scaling: { type: 'yarn', factor: 2 } }));
    await expect(Policy.load(d)).rejects.toThrow(new RegExp(`${cfgPath}: field rope_scaling.rope_type: rope scaling "yarn" is not implemented`));
    await writeFile(cfgPath, JSON.stringify({ ...cfg, vocab_size: 5 }));
    await expect(Policy.load(d)).rejects.toThrow(new RegExp(`${cfgPath}: field vocab_size: 5 is smaller than the \\d+ tokens of ${join(d, 'tokenizer.json')}`));
    await writeFile(cfgPath, JSON.stringify(cfg));

    const wPath = join(d, 'model.safetensors');
    const bytes = await readFile(wPath);
    await writeFile(wPath, bytes.subarray(0, bytes.length - 10));
    await expect(Policy.load(d)).rejects.toThrow(new RegExp(`${wPath}: .*truncated`));

    const src = await Policy.load(await checkpoint('src'));
    const host = await src.hostWeights();
    src.dispose();
    const write = (m: Map<string, { shape: number[]; data: Float32Array }>) => writeSafetensors(wPath, m);
    const wrong = new Map(host);
    wrong.set('model.norm.weight', { shape: [3], data: new Float32Array(3) });
    await write(wrong);
    await expect(Policy.load(d)).rejects.toThrow(new RegExp(`${wPath}: tensor model.norm.weight has shape \\[3\\]`));
    const missing = new Map(host);
    missing.delete('model.layers.1.mlp.up_proj.weight');
    await write(missing);
    await expect(Policy.load(d)).rejects.toThrow(new RegExp(`${wPath}: missing tensor model.layers.1.mlp.up_proj.weight`));
    const extra = new Map(host);
    extra.set('model.layers.9.foo', { shape: [1], data: new Float32Array(1) });
    await write(extra);
    await expect(Policy.load(d)).rejects.toThrow(new RegExp(`${wPath}: unexpected tensor model.layers.9.foo`));
    // tolerated: rotary inv_freq buffers of old checkpoints, and lm_head.weight of a tied model
    const tolerated = new Map(host);
    tolerated.set('model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [4], data: new Float32Array(4) });
    tolerated.set('lm_head.weight', host.get('model.embed_tokens.weight')!);
    await write(tolerated);
    (await Policy.load(d)).dispose();
  });

  test('a tokenizer larger than vocab_size is rejected', () => {
    const p = randomPolicy();
    expect(() => Policy.fromWeights({ ...p.config, vocab_size: 5 }, p.tokenizer, new Map())).toThrow(/field vocab_size: 5 is smaller than the \d+ tokens/);
    p.dispose();
  });
});

describe('variables', () => {
  test('stable order, HF names, parameter count', () => {
    const p = randomPolicy({ numLayers: 2, tieWordEmbeddings: false });
    const names = [...p.namedVariables().keys()];
    expect(names[0]).toBe('model.embed_tokens.weight');
    expect(names.slice(1, 10)).toEqual([
      'model.layers.0.input_layernorm.weight',
      'model.layers.0.self_attn.q_proj.weight',
      'model.layers.0.self_attn.q_proj.bias',
      'model.layers.0.self_attn.k_proj.weight',
      'model.layers.0.self_attn.k_proj.bias',
      'model.layers.0.self_attn.v_proj.weight',
      'model.layers.0.self_attn.v_proj.bias',
      'model.layers.0.self_attn.o_proj.weight',
      'model.layers.0.post_attention_layernorm.weight',
    ]);
    expect(names.slice(-2)).toEqual(['model.norm.weight', 'lm_head.weight']);
    expect(p.variables()).toEqual([...p.namedVariables().values()]);
    expect(p.variables().every((v) => v.trainable)).toBe(true);
    const { hidden_size: D, intermediate_size: I, vocab_size: V } = p.config;
    const perLayer = 2 * D + (D * D + D) + 2 * (D * 16 + 16) + D * D + 3 * D * I; // q, k/v (2 kv heads x 8), o, mlp
    expect(p.numParameters()).toBe(2 * V * D + D + 2 * perLayer);
    p.dispose();
  });

  test('clone is independent; copyWeightsFrom copies', () => {
    const a = randomPolicy({ seed: 1 });
    const b = a.clone();
    expect(logitsOf(b)).toEqual(logitsOf(a));
    const v = b.namedVariables().get('model.norm.weight')!;
    tf.tidy(() => v.assign(tf.mul(v, 2)));
    expect(maxAbsDiff(logitsOf(b), logitsOf(a))).toBeGreaterThan(1e-3);
    const c = randomPolicy({ seed: 2 });
    c.copyWeightsFrom(b);
    expect(logitsOf(c)).toEqual(logitsOf(b));
    a.dispose();
    expect(b.numParameters()).toBeGreaterThan(0); // b survives a's disposal
    expect(logitsOf(c)).toEqual(logitsOf(b));
    b.dispose();
    c.dispose();
  });
});

test('writes into a folder whose parent does not exist yet', async () => {
  const p = randomPolicy();
  const d = join(dir, 'deep', 'er', 'model');
  await p.save(d);
  expect((await stat(join(d, 'model.safetensors'))).isFile()).toBe(true);
  await mkdir(join(dir, 'deep', 'x'), { recursive: true });
  p.dispose();
});
