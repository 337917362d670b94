/**
 * Tokenizers. For now a character-level tokenizer, saved as a Hugging Face `tokenizer.json`
 * (model "WordLevel" whose vocab is single characters plus special tokens, a pre-tokenizer that isolates
 * every character, and a "Fuse" decoder that concatenates tokens) and a `tokenizer_config.json` naming the
 * special tokens, so `transformers.AutoTokenizer.from_pretrained(dir)` reads the same ids.
 *
 * {@link loadTokenizer} dispatches on the tokenizer.json model type; a BPE tokenizer (e.g. via
 * @huggingface/tokenizers) can later be added there behind the same {@link TextTokenizer} interface.
 */
import { EmpoError } from '@empo/core';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface TextTokenizer {
  /** Number of ids (the model's vocab_size may be larger). */
  readonly vocabSize: number;
  readonly eosId: number;
  readonly padId: number;
  /** null when the tokenizer has no BOS token (e.g. Qwen2). */
  readonly bosId: number | null;
  readonly unkId: number | null;
  /** Token ids that `decode` skips. */
  readonly specialIds: ReadonlySet<number>;
  /** Text to ids. No special tokens are added. */
  encode(text: string): number[];
  /** Ids to text, skipping special tokens. */
  decode(ids: readonly number[]): string;
  /** Write tokenizer.json and tokenizer_config.json into `dir` (which must exist or is created). */
  save(dir: string): Promise<void>;
}

export class TokenizerError extends EmpoError {
  override name = 'TokenizerError';
}

/** Names of the special tokens. */
export interface SpecialTokens {
  pad: string;
  bos: string;
  eos: string;
  unk: string;
}

export const DEFAULT_SPECIALS: SpecialTokens = { pad: '<pad>', bos: '<s>', eos: '</s>', unk: '<unk>' };

/**
 * One id per character (Unicode code point). Ids 0..3 are the special tokens in the order
 * pad, bos, eos, unk; characters follow in code point order. Characters not in the vocab encode to unk.
 * Note: `encode` never produces special ids from text (the text "<s>" is three characters).
 */
export class CharTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly specialIds: ReadonlySet<number>;
  private readonly charToId: Map<string, number>;

  /** `tokens[id]` is the token string of id; `specials` name the tokens in `tokens` that are special. */
  constructor(
    readonly tokens: readonly string[],
    readonly specials: SpecialTokens = DEFAULT_SPECIALS,
  ) {
    const index = new Map<string, number>();
    tokens.forEach((t, i) => {
      if (index.has(t)) throw new TokenizerError(`duplicate token ${JSON.stringify(t)}`);
      index.set(t, i);
    });
    const idOf = (role: keyof SpecialTokens): number => {
      const id = index.get(specials[role]);
      if (id === undefined) throw new TokenizerError(`special token ${role}=${JSON.stringify(specials[role])} is not in the vocab`);
      return id;
    };
    this.padId = idOf('pad');
    this.bosId = idOf('bos');
    this.eosId = idOf('eos');
    this.unkId = idOf('unk');
    this.specialIds = new Set([this.padId, this.bosId, this.eosId, this.unkId]);
    this.charToId = new Map();
    tokens.forEach((t, i) => {
      if (this.specialIds.has(i)) return;
      if ([...t].length !== 1) throw new TokenizerError(`token ${i} ${JSON.stringify(t)} is not a single character`);
      this.charToId.set(t, i);
    });
    this.vocabSize = tokens.length;
  }

  /** A tokenizer whose vocab is every character that occurs in `texts`. */
  static fromCorpus(texts: Iterable<string>, specials: Partial<SpecialTokens> = {}): CharTokenizer {
    const chars = new Set<string>();
    for (const t of texts) for (const ch of t) chars.add(ch);
    return CharTokenizer.fromChars([...chars], specials);
  }

  /** A tokenizer for exactly these characters (a string or a list; duplicates ignored). */
  static fromChars(chars: string | Iterable<string>, specials: Partial<SpecialTokens> = {}): CharTokenizer {
    const sp: SpecialTokens = { ...DEFAULT_SPECIALS, ...specials };
    const list = typeof chars === 'string' ? [...chars] : [...chars];
    const specialNames = new Set([sp.pad, sp.bos, sp.eos, sp.unk]);
    if (specialNames.size !== 4) throw new TokenizerError('special token names must be distinct');
    const uniq = [...new Set(list)].filter((c) => !specialNames.has(c));
    for (const c of uniq) if ([...c].length !== 1) throw new TokenizerError(`${JSON.stringify(c)} is not a single character`);
    uniq.sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    return new CharTokenizer([sp.pad, sp.bos, sp.eos, sp.unk, ...uniq], sp);
  }

  static async load(dir: string): Promise<CharTokenizer> {
    const { json, config, file } = await readTokenizerFiles(dir);
    return CharTokenizer.fromJson(json, config, file);
  }

  /** Build from a parsed tokenizer.json (and optional tokenizer_config.json). `source` is named in errors. */
  static fromJson(json: unknown, config: Record<string, unknown> | null = null, source = 'tokenizer.json'): CharTokenizer {
    const fail = (msg: string): never => {
      throw new TokenizerError(`${source}: ${msg}`);
    };
    const j = json as { model?: { type?: unknown; vocab?: unknown; unk_token?: unknown }; added_tokens?: unknown };
    if (j?.model?.type !== 'WordLevel') fail(`model.type ${JSON.stringify(j?.model?.type)} is not a character-level WordLevel model`);
    const vocab = j.model!.vocab;
    if (vocab === null || typeof vocab !== 'object' || Array.isArray(vocab)) fail('model.vocab is not an object');
    const tokens: string[] = [];
    for (const [tok, id] of Object.entries(vocab as Record<string, unknown>)) {
      if (!Number.isInteger(id) || (id as number) < 0) fail(`model.vocab[${JSON.stringify(tok)}] is not a valid id`);
      if (tokens[id as number] !== undefined) fail(`id ${id} is used twice in model.vocab`);
      tokens[id as number] = tok;
    }
    for (const t of Array.isArray(j.added_tokens) ? (j.added_tokens as { id?: unknown; content?: unknown }[]) : []) {
      if (typeof t.content === 'string' && Number.isInteger(t.id) && tokens[t.id as number] === undefined) tokens[t.id as number] = t.content;
    }
    for (let i = 0; i < tokens.length; i++) if (tokens[i] === undefined) fail(`ids are not contiguous: id ${i} is missing`);
    const name = (key: string, dflt: string): string => {
      const v = config?.[key];
      if (typeof v === 'string') return v;
      if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
      return dflt;
    };
    const unk = typeof j.model!.unk_token === 'string' ? (j.model!.unk_token as string) : DEFAULT_SPECIALS.unk;
    const specials: SpecialTokens = {
      pad: name('pad_token', DEFAULT_SPECIALS.pad),
      bos: name('bos_token', DEFAULT_SPECIALS.bos),
      eos: name('eos_token', DEFAULT_SPECIALS.eos),
      unk: name('unk_token', unk),
    };
    try {
      return new CharTokenizer(tokens, specials);
    } catch (e) {
      return fail((e as Error).message);
    }
  }

  encode(text: string): number[] {
    const out: number[] = [];
    for (const ch of text) out.push(this.charToId.get(ch) ?? this.unkId);
    return out;
  }

  decode(ids: readonly number[]): string {
    let s = '';
    for (const id of ids) {
      if (this.specialIds.has(id)) continue;
      const t = this.tokens[id];
      if (t === undefined) throw new TokenizerError(`decode: id ${id} is out of range [0, ${this.vocabSize})`);
      s += t;
    }
    return s;
  }

  /** The Hugging Face tokenizer.json object. */
  toJson(): Record<string, unknown> {
    const vocab: Record<string, number> = {};
    this.tokens.forEach((t, i) => (vocab[t] = i));
    const added = [...this.specialIds]
      .sort((a, b) => a - b)
      .map((id) => ({ id, content: this.tokens[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      // Isolate every character (one code point) as its own pre-token; [\s\S] also matches newlines.
      pre_tokenizer: { type: 'Split', pattern: { Regex: '[\\s\\S]' }, behavior: 'Isolated', invert: false },
      post_processor: null,
      decoder: { type: 'Fuse' },
      model: { type: 'WordLevel', vocab, unk_token: this.specials.unk },
    };
  }

  /** The Hugging Face tokenizer_config.json object. */
  toConfigJson(): Record<string, unknown> {
    const decoderMap: Record<string, unknown> = {};
    for (const id of [...this.specialIds].sort((a, b) => a - b)) {
      decoderMap[String(id)] = { content: this.tokens[id], lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
    }
    return {
      tokenizer_class: 'PreTrainedTokenizerFast',
      bos_token: this.specials.bos,
      eos_token: this.specials.eos,
      pad_token: this.specials.pad,
      unk_token: this.specials.unk,
      added_tokens_decoder: decoderMap,
      add_bos_token: false,
      add_eos_token: false,
      clean_up_tokenization_spaces: false,
    };
  }

  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(this.toJson(), null, 2) + '\n');
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(this.toConfigJson(), null, 2) + '\n');
  }
}

async function readTokenizerFiles(dir: string): Promise<{ json: unknown; config: Record<string, unknown> | null; file: string }> {
  const file = join(dir, 'tokenizer.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new TokenizerError(`${file}: cannot read tokenizer: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${file}: invalid JSON: ${(e as Error).message}`);
  }
  const cfgFile = join(dir, 'tokenizer_config.json');
  let config: Record<string, unknown> | null = null;
  let cfgText: string | null = null;
  try {
    cfgText = await readFile(cfgFile, 'utf8');
  } catch {
    // tokenizer_config.json is optional: default special token names are used.
  }
  if (cfgText !== null) {
    try {
      config = JSON.parse(cfgText) as Record<string, unknown>;
    } catch (e) {
      throw new TokenizerError(`${cfgFile}: invalid JSON: ${(e as Error).message}`);
    }
  }
  return { json, config, file };
}

/**
 * Load the tokenizer of a model folder (tokenizer.json + optional tokenizer_config.json).
 * Dispatches on `model.type`; only character-level "WordLevel" tokenizers are supported for now.
 */
export async function loadTokenizer(dir: string): Promise<TextTokenizer> {
  const { json, config, file } = await readTokenizerFiles(dir);
  const type = (json as { model?: { type?: unknown } })?.model?.type;
  switch (type) {
    case 'WordLevel':
      return CharTokenizer.fromJson(json, config, file);
    default:
      throw new TokenizerError(`${file}: tokenizer model type ${JSON.stringify(type)} is not supported yet (only character-level WordLevel)`);
  }
}
