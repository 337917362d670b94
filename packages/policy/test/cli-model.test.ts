/**
 * `empo logprobs` and `empo generate` (packages/cli/src/commands/model.ts) on model folders: the bundled
 * character-level format and a hand-built Hugging Face Qwen2 folder with a BPE tokenizer and a chat template.
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { EmpoError } from '@empo/core';
import { generate, logprobs } from '../../cli/src/commands/model.ts';
import { Policy } from '../src/index.ts';
import { maxAbsDiff, sharpPolicy, tempDir, withBackend } from './helpers.ts';
import { bpeTokenizerJson, CHATML_TEMPLATE, randomHFWeights, writeHFFolder } from './hf-fixtures.ts';
import { referenceLogits, referenceLogprobs, type RefConfig } from './reference.ts';

let dir: string;
let cleanup: () => Promise<void>;
let charModel: string;
let qwenModel: string;
const QWEN_TOK = bpeTokenizerJson();
const QWEN_CFG = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  vocab_size: 300,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  rope_scaling: null,
  tie_word_embeddings: true,
  use_sliding_window: false,
  torch_dtype: 'float32',
  eos_token_id: QWEN_TOK.ids.get('<|im_end|>'),
};
const qwenWeights = randomHFWeights(QWEN_CFG, 21, 0.3);

beforeAll(async () => {
  await withBackend('cpu');
  ({ dir, cleanup } = await tempDir());
  charModel = join(dir, 'char');
  const p = sharpPolicy({ seed: 2 });
  await p.save(charModel);
  p.dispose();
  qwenModel = join(dir, 'qwen');
  await writeHFFolder(qwenModel, {
    config: QWEN_CFG,
    weights: qwenWeights,
    dtype: 'F32',
    tokenizer: QWEN_TOK.json,
    tokenizerConfig: { bos_token: null, eos_token: '<|im_end|>', pad_token: '<|endoftext|>', chat_template: CHATML_TEMPLATE },
  });
});
afterAll(() => cleanup());

/** Run a command, returning what it wrote to stdout. */
async function run(cmd: typeof logprobs, argv: string[]): Promise<string> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await cmd.run([...argv, '--backend', 'cpu']);
  } finally {
    spy.mockRestore();
  }
  return out;
}

describe('empo logprobs', () => {
  test('--json on the character-level format: ids and values equal Policy.completionLogprobs', async () => {
    const out = await run(logprobs, ['--model', charModel, '--prompt', 'what is 12+30?', '--completion', ' 42.', '--json']);
    expect(out.endsWith('\n')).toBe(true);
    const r = JSON.parse(out);
    expect(Object.keys(r)).toEqual(['prompt_ids', 'completion_ids', 'logprobs']);
    const p = await Policy.load(charModel);
    expect(r.prompt_ids).toEqual(p.encodePrompt('what is 12+30?'));
    expect(r.prompt_ids[0]).toBe(p.tokenizer.bosId); // the char tokenizer adds BOS
    expect(r.completion_ids).toEqual(p.tokenizer.encode(' 42.'));
    expect(r.logprobs).toEqual(p.completionLogprobs([r.prompt_ids], [r.completion_ids])[0]);
    p.dispose();
  });

  test('--json on a hand-built Qwen2 folder: log p(completion_ids[i] | prompt, completion[:i]) from the formulas', async () => {
    const r = JSON.parse(await run(logprobs, ['--model', qwenModel, '--prompt', ' what is 12+30?', '--completion', ' the answer: 42', '--json']));
    const ids = QWEN_TOK.ids;
    expect(r.prompt_ids.slice(0, 4)).toEqual([ids.get('Ġwhat'), ids.get('Ġis'), ids.get('Ġ'), ids.get('12')]);
    expect(r.completion_ids[0]).toBe(ids.get('Ġthe'));
    const seq = [...r.prompt_ids, ...r.completion_ids];
    const want = referenceLogprobs(referenceLogits(QWEN_CFG as RefConfig, qwenWeights, seq), seq.slice(1)).slice(r.prompt_ids.length - 1);
    expect(r.logprobs.length).toBe(r.completion_ids.length);
    expect(maxAbsDiff(r.logprobs, want)).toBeLessThan(1e-4);
  });

  test('--chat applies the chat template; the table output lists tokens', async () => {
    const r = JSON.parse(await run(logprobs, ['--model', qwenModel, '--prompt', 'hi', '--completion', 'yo', '--chat', '--system', 'be brief', '--json']));
    const p = await Policy.load(qwenModel);
    expect(p.tokenizer.decode(r.prompt_ids)).toBe('system\nbe brief\nuser\nhi\nassistant\n');
    expect(r.prompt_ids[0]).toBe(QWEN_TOK.ids.get('<|im_start|>'));
    p.dispose();
    const table = await run(logprobs, ['--model', qwenModel, '--prompt', ' what', '--completion', ' is 12']);
    expect(table).toMatch(/^prompt: 1 tokens; completion: 3 tokens\n/);
    expect(table).toContain('"Ġis"');
    expect(table).toMatch(/\nsum -\d+\.\d{4}  mean -\d+\.\d{4}\n$/);
  });
});

describe('empo generate', () => {
  test('prints only the completion text: greedy by default, seeded sampling reproducible', async () => {
    const p = await Policy.load(charModel);
    const prompt = p.encodePrompt('what is 12+30?');
    const greedy = p.generate([prompt], { maxNewTokens: 20, temperature: 0 });
    expect(await run(generate, ['--model', charModel, '--prompt', 'what is 12+30?', '--max-tokens', '20'])).toBe(p.tokenizer.decode(greedy.tokens[0]!));
    const sampled = p.generate([prompt], { maxNewTokens: 15, temperature: 0.8, topP: 0.9, seed: 4 });
    const args = ['--model', charModel, '--prompt', 'what is 12+30?', '--max-tokens', '15', '--temperature', '0.8', '--top-p', '0.9', '--seed', '4'];
    expect(await run(generate, args)).toBe(p.tokenizer.decode(sampled.tokens[0]!));
    const j = JSON.parse(await run(generate, [...args, '--json']));
    expect(j).toMatchObject({ prompt_ids: prompt, completion_ids: sampled.tokens[0], finished: sampled.finished[0] });
    p.dispose();
  });

  test('HF folder with --chat: the completion up to <|im_end|> (excluded from the text)', async () => {
    // make <|im_end|> likely (~25% per step): hidden dimension 0 is held at 10 in the residual stream (embeddings
    // set it, no layer writes it), and only <|im_end|>'s lm_head row reads it
    const model = join(dir, 'qwen-eos');
    const imEnd = QWEN_TOK.ids.get('<|im_end|>')!;
    const cfg = { ...QWEN_CFG, tie_word_embeddings: false };
    const w = randomHFWeights(cfg, 22, 0.3);
    const D = cfg.hidden_size;
    const row0 = (name: string, value: number) => w.get(name)!.data.fill(value, 0, w.get(name)!.shape[1]);
    for (let v = 0; v < cfg.vocab_size; v++) w.get('model.embed_tokens.weight')!.data[v * D] = 10;
    for (let l = 0; l < cfg.num_hidden_layers; l++) for (const m of ['self_attn.o_proj', 'mlp.down_proj']) row0(`model.layers.${l}.${m}.weight`, 0);
    w.get('model.norm.weight')!.data[0] = 1;
    for (let v = 0; v < cfg.vocab_size; v++) w.get('lm_head.weight')!.data[v * D] = v === imEnd ? 1 : 0;
    await writeHFFolder(model, { config: cfg, weights: w, dtype: 'F32', tokenizer: QWEN_TOK.json, tokenizerConfig: { eos_token: '<|im_end|>', chat_template: CHATML_TEMPLATE } });
    const p = await Policy.load(model);
    const prompt = p.encodePrompt('hi', { chat: true });
    const out = p.generate([prompt], { maxNewTokens: 40, temperature: 1, seed: 3 });
    expect(out.tokens[0]!.length).toBeGreaterThan(1);
    expect(out.finished[0]).toBe(true);
    expect(out.tokens[0]!.at(-1)).toBe(imEnd);
    const text = await run(generate, ['--model', model, '--prompt', 'hi', '--chat', '--max-tokens', '40', '--temperature', '1', '--seed', '3']);
    expect(text).toBe(p.tokenizer.decode(out.tokens[0]!.slice(0, -1)));
    p.dispose();
  });

  test('user errors are EmpoErrors that name the flag or the file', async () => {
    const cases: [typeof logprobs, string[], RegExp][] = [
      [generate, ['--prompt', 'x'], /--model is required/],
      [generate, ['--model', charModel], /--prompt is required/],
      [logprobs, ['--model', charModel, '--prompt', 'x'], /--completion is required/],
      [generate, ['--model', charModel, '--prompt', 'x', '--top-p', '0'], /--top-p must be in \(0, 1\]/],
      [generate, ['--model', charModel, '--prompt', 'x', '--temperature=-1'], /--temperature must be a number >= 0/],
      [generate, ['--model', charModel, '--prompt', 'x', '--max-tokens', '1.5'], /--max-tokens must be a non-negative integer/],
      [generate, ['--model', join(dir, 'nope'), '--prompt', 'x'], /--model: .*nope is not a folder/],
      [generate, ['--model', dir, '--prompt', 'x'], /config\.json: cannot read model config/],
      [generate, ['--model', charModel, '--prompt', 'x', '--system', 's'], /--system needs --chat/],
      [generate, ['--model', qwenModel, '--prompt', ''], /--prompt is empty and the tokenizer adds no BOS/],
      [generate, ['--model', charModel, '--prompt', 'x', '--chat'], /no chat template/],
      [generate, ['--model', charModel, '--prompt', 'x', '--frobnicate'], /Unknown option '--frobnicate'/],
    ];
    for (const [cmd, argv, re] of cases) {
      const err = await run(cmd, argv).catch((e: Error) => e);
      expect(err, argv.join(' ')).toBeInstanceOf(EmpoError);
      expect((err as Error).message, argv.join(' ')).toMatch(re);
    }
    expect(tf.memory().numTensors).toBeLessThan(50); // policies are disposed after errors too
  });
});
