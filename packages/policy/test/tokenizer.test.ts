import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CharTokenizer, HFTokenizer, loadTokenizer, readTokenizerFiles, TokenizerError } from '../src/index.ts';
import { tempDir } from './helpers.ts';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());

describe('CharTokenizer', () => {
  const tok = CharTokenizer.fromCorpus(['hello world', 'what is 12+30?\n', 'héllo 🙂']);

  test('specials first, then characters in code point order', () => {
    expect(tok.tokens.slice(0, 4)).toEqual(['<pad>', '<s>', '</s>', '<unk>']);
    expect([tok.padId, tok.bosId, tok.eosId, tok.unkId]).toEqual([0, 1, 2, 3]);
    const chars = tok.tokens.slice(4);
    expect(chars).toEqual([...new Set([...'hello world' + 'what is 12+30?\n' + 'héllo 🙂'])].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
    expect(chars[0]).toBe('\n');
    expect(chars.at(-1)).toBe('🙂'); // one token for a surrogate pair
    expect(tok.vocabSize).toBe(4 + chars.length);
  });

  test('encode/decode round trip, no specials added', () => {
    const text = 'what is 12+30?\nhéllo 🙂';
    const ids = tok.encode(text);
    expect(ids.length).toBe([...text].length);
    expect(ids.every((i) => i >= 4)).toBe(true);
    expect(tok.decode(ids)).toBe(text);
  });

  test('unknown characters map to <unk>; decode skips special tokens', () => {
    expect(tok.encode('hZ!')).toEqual([tok.encode('h')[0], tok.unkId, tok.unkId]);
    expect(tok.decode([tok.bosId, ...tok.encode('hi'), tok.eosId, tok.padId, tok.padId])).toBe('hi');
    expect(tok.decode([tok.unkId])).toBe('');
    expect(tok.encode('<s>')).toEqual(tok.encode('<').concat(tok.encode('s'), tok.encode('>')));
    expect(tok.decode([9999])).toBe(''); // past the vocabulary (a model's padded embedding rows): no text
    expect(() => tok.decode([1.5])).toThrow(/invalid token id 1.5/);
  });

  test('custom special token names; fromChars rejects multi-character entries', () => {
    const t = CharTokenizer.fromChars('ab', { eos: '<|endoftext|>', pad: '<|pad|>' });
    expect(t.tokens).toEqual(['<|pad|>', '<s>', '<|endoftext|>', '<unk>', 'a', 'b']);
    expect(() => CharTokenizer.fromChars(['ab'])).toThrow(/not a single character/);
  });

  test('save writes a Hugging Face tokenizer.json (WordLevel, per-char split, Fuse decoder) and tokenizer_config.json', async () => {
    const d = join(dir, 'tok');
    await tok.save(d);
    const json = JSON.parse(await readFile(join(d, 'tokenizer.json'), 'utf8'));
    expect(json.model.type).toBe('WordLevel');
    expect(json.model.unk_token).toBe('<unk>');
    expect(json.model.vocab['\n']).toBe(4);
    expect(Object.keys(json.model.vocab).length).toBe(tok.vocabSize);
    expect(json.pre_tokenizer).toEqual({ type: 'Split', pattern: { Regex: '[\\s\\S]' }, behavior: 'Isolated', invert: false });
    expect(json.decoder).toEqual({ type: 'Fuse' });
    expect(json.added_tokens.map((t: { content: string; special: boolean }) => [t.content, t.special])).toEqual([
      ['<pad>', true],
      ['<s>', true],
      ['</s>', true],
      ['<unk>', true],
    ]);
    // HF adds BOS (add_special_tokens=True) through the post-processor, as encodePrompt does
    expect(json.post_processor).toMatchObject({ type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>' } }, { Sequence: { id: 'A' } }] });
    expect(json.post_processor.special_tokens['<s>'].ids).toEqual([1]);
    const cfg = JSON.parse(await readFile(join(d, 'tokenizer_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ bos_token: '<s>', eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>', tokenizer_class: 'PreTrainedTokenizerFast', add_bos_token: true });
    expect(cfg.added_tokens_decoder['2'].content).toBe('</s>');
  });

  test('load(save(t)) is the same tokenizer, via CharTokenizer.load and loadTokenizer', async () => {
    const d = join(dir, 'tok2');
    await tok.save(d);
    for (const loaded of [await CharTokenizer.load(d), await loadTokenizer(d)]) {
      expect(loaded).toBeInstanceOf(CharTokenizer);
      expect((loaded as CharTokenizer).tokens).toEqual(tok.tokens);
      expect([loaded.padId, loaded.bosId, loaded.eosId, loaded.unkId]).toEqual([0, 1, 2, 3]);
      expect(loaded.encode('héllo 🙂')).toEqual(tok.encode('héllo 🙂'));
    }
  });

  test('BOS: prompts start with BOS; files written before the post-processor (add_bos_token false) keep that', async () => {
    expect(tok.addBos).toBe(true);
    const d = join(dir, 'legacy');
    await tok.save(d);
    const json = JSON.parse(await readFile(join(d, 'tokenizer.json'), 'utf8'));
    const cfg = JSON.parse(await readFile(join(d, 'tokenizer_config.json'), 'utf8'));
    await writeFile(join(d, 'tokenizer.json'), JSON.stringify({ ...json, post_processor: null }));
    await writeFile(join(d, 'tokenizer_config.json'), JSON.stringify({ ...cfg, add_bos_token: false }));
    expect((await loadTokenizer(d)).addBos).toBe(true); // the legacy format of this project
    await writeFile(join(d, 'tokenizer.json'), JSON.stringify(json));
    expect((await loadTokenizer(d)).addBos).toBe(false); // new format: add_bos_token is honoured
    const noBos = new CharTokenizer(tok.tokens, tok.specials, { addBos: false });
    const e = join(dir, 'nobos');
    await noBos.save(e);
    expect(JSON.parse(await readFile(join(e, 'tokenizer.json'), 'utf8')).post_processor.single).toEqual([{ Sequence: { id: 'A', type_id: 0 } }]);
    expect((await loadTokenizer(e)).addBos).toBe(false);
  });

  test('@huggingface/tokenizers reads the saved files to the same ids and specials', async () => {
    const d = join(dir, 'viahf');
    await tok.save(d);
    const hf = HFTokenizer.fromFiles(await readTokenizerFiles(d));
    const text = 'hello world\nwhat is 12+30? héllo 🙂 zzz';
    expect(hf.encode(text)).toEqual(tok.encode(text)); // unknown 'z' -> <unk> in both
    expect(hf.decode(tok.encode('héllo 🙂'))).toBe('héllo 🙂');
    expect([hf.bosId, hf.eosId, hf.padId, hf.unkId, hf.addBos, hf.vocabSize]).toEqual([1, 2, 0, 3, true, tok.vocabSize]);
  });

  test('a chat template in tokenizer_config.json is kept', async () => {
    const t = new CharTokenizer(tok.tokens, tok.specials, { chatTemplate: '{{ messages[0].content }}' });
    const d = join(dir, 'chat');
    await t.save(d);
    expect((await loadTokenizer(d)).chatTemplate).toBe('{{ messages[0].content }}');
  });

  test('special tokens are identified from tokenizer_config.json', async () => {
    const t = CharTokenizer.fromChars('xyz', { eos: '<|end|>' });
    const d = join(dir, 'tok3');
    await t.save(d);
    const loaded = await loadTokenizer(d);
    expect(loaded.eosId).toBe(2);
    expect(loaded.decode([4, 2, 5])).toBe('xy');
  });
});

describe('loadTokenizer errors name the file', () => {
  test('missing tokenizer.json', async () => {
    const d = join(dir, 'empty');
    await mkdir(d, { recursive: true });
    await expect(loadTokenizer(d)).rejects.toThrow(join(d, 'tokenizer.json'));
  });
  test('invalid JSON', async () => {
    const d = join(dir, 'badjson');
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'tokenizer.json'), '{');
    await expect(loadTokenizer(d)).rejects.toThrow(/tokenizer\.json: invalid JSON/);
  });
  test('a tokenizer.json that @huggingface/tokenizers cannot build names the file', async () => {
    const d = join(dir, 'bpe');
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'tokenizer.json'), JSON.stringify({ model: { type: 'NoSuchModel', vocab: {} } }));
    const err = await loadTokenizer(d).catch((e: Error) => e);
    expect(err).toBeInstanceOf(TokenizerError);
    expect((err as Error).message).toMatch(/bpe\/tokenizer\.json: cannot build the tokenizer/);
  });
  test('a WordLevel vocab that is not character level, or lacks a special token', async () => {
    const d = join(dir, 'words');
    await mkdir(d, { recursive: true });
    const base = { '<pad>': 0, '<s>': 1, '</s>': 2, '<unk>': 3 };
    // a word-level vocab is not the character tokenizer: it loads through @huggingface/tokenizers
    await writeFile(
      join(d, 'tokenizer.json'),
      JSON.stringify({ model: { type: 'WordLevel', vocab: { ...base, hello: 4, world: 5 }, unk_token: '<unk>' }, pre_tokenizer: { type: 'Whitespace' }, decoder: null, normalizer: null, post_processor: null, added_tokens: [] }),
    );
    await expect(loadTokenizer(d)).rejects.toThrow(/words\/tokenizer_config\.json: no eos_token/);
    await writeFile(join(d, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>', eos_token: '</s>', pad_token: '<pad>' }));
    const words = await loadTokenizer(d);
    expect(words).toBeInstanceOf(HFTokenizer);
    expect([words.encode('hello world'), words.eosId, words.padId, words.bosId, words.addBos]).toEqual([[4, 5], 2, 0, 1, false]);
    await expect(CharTokenizer.load(d)).rejects.toThrow(/words\/tokenizer\.json: token 4 "hello" is not a single character/);
    await rm(join(d, 'tokenizer_config.json'));
    await writeFile(join(d, 'tokenizer.json'), JSON.stringify({ model: { type: 'WordLevel', vocab: { '<pad>': 0, '<unk>': 1, a: 2 }, unk_token: '<unk>' } }));
    await expect(CharTokenizer.load(d)).rejects.toThrow(/special token bos="<s>" is not in the vocab/);
    await writeFile(join(d, 'tokenizer.json'), JSON.stringify({ model: { type: 'WordLevel', vocab: { ...base, a: 5 }, unk_token: '<unk>' } }));
    await expect(CharTokenizer.load(d)).rejects.toThrow(/id 4 is missing/);
  });
});
