/**
 * Tokenizers behind one interface, {@link TextTokenizer}, read from a Hugging Face model folder:
 *
 *  - {@link CharTokenizer}: the project's character-level tokenizer (a "WordLevel" tokenizer.json whose vocab is
 *    single characters plus special tokens), implemented here;
 *  - {@link HFTokenizer}: any other tokenizer.json (BPE as in GPT-2 / Qwen / Llama 3, WordPiece, Unigram, ...)
 *    through `@huggingface/tokenizers`.
 *
 * Special tokens (bos/eos/pad/unk) come from tokenizer_config.json; when it names no EOS token, the
 * `eos_token_id` of generation_config.json or config.json is used. Whether a prompt starts with BOS follows the
 * Hugging Face convention: tokenizer_config.json's `add_bos_token` when given, else whether tokenizer.json's
 * post-processor inserts the BOS token. The chat template comes from chat_template.jinja, chat_template.json or
 * tokenizer_config.json's `chat_template` (in that order, as transformers reads them).
 */
import { EmpoError } from '@empo/core';
import { Tokenizer as HFTokenizerImpl } from '@huggingface/tokenizers';
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
  /** Whether a prompt starts with the BOS token (the Hugging Face `add_bos_token` convention). */
  readonly addBos: boolean;
  /** Jinja chat template (tokenizer_config.json `chat_template`), or null. */
  readonly chatTemplate: string | null;
  /** Token ids that `decode` skips. */
  readonly specialIds: ReadonlySet<number>;
  /** Text to ids. No special tokens are added (no BOS; see `addBos`). */
  encode(text: string): number[];
  /**
   * Ids to text, skipping special tokens and ids at or past `vocabSize` (a model's vocab_size may be larger
   * than its tokenizer's, e.g. Qwen2.5's 151,936 vs 151,665: those embedding rows have no text). Negative or
   * non-integer ids are an error.
   */
  decode(ids: readonly number[]): string;
  /** The token string of an id (undefined when out of range). */
  idToToken(id: number): string | undefined;
  /** Write tokenizer.json and tokenizer_config.json (and the chat template file it came with) into `dir`. */
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

/** Options of a CharTokenizer beyond its vocab. */
export interface CharTokenizerOptions {
  /** Prompts start with BOS (default true: the bundled models are trained that way). */
  addBos?: boolean;
  chatTemplate?: string | null;
}

/**
 * One id per character (Unicode code point). Ids 0..3 are the special tokens in the order
 * pad, bos, eos, unk; characters follow in code point order. Characters not in the vocab encode to unk.
 * Note: `encode` never produces special ids from text (the text "<s>" is three characters), so a chat
 * template for a character tokenizer should not rely on `bos_token` / `eos_token` strings.
 */
export class CharTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly specialIds: ReadonlySet<number>;
  readonly addBos: boolean;
  readonly chatTemplate: string | null;
  private readonly charToId: Map<string, number>;

  /** `tokens[id]` is the token string of id; `specials` name the tokens in `tokens` that are special. */
  constructor(
    readonly tokens: readonly string[],
    readonly specials: SpecialTokens = DEFAULT_SPECIALS,
    opts: CharTokenizerOptions = {},
  ) {
    this.addBos = opts.addBos ?? true;
    this.chatTemplate = opts.chatTemplate ?? null;
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
    const files = await readTokenizerFiles(dir);
    return CharTokenizer.fromJson(files.json, files.config, files.file, files.chatTemplate);
  }

  /**
   * Build from a parsed tokenizer.json (and optional tokenizer_config.json). `source` is named in errors.
   * BOS: tokenizer_config's `add_bos_token` when the tokenizer.json has a post-processor (what `save` writes);
   * files written before that (no post-processor, `add_bos_token: false`) keep this project's convention of
   * prompts starting with BOS.
   */
  static fromJson(json: unknown, config: Record<string, unknown> | null = null, source = 'tokenizer.json', chatTemplate?: string | null): CharTokenizer {
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
    const legacy = (json as { post_processor?: unknown }).post_processor == null;
    const addBos = legacy || typeof config?.add_bos_token !== 'boolean' ? true : (config.add_bos_token as boolean);
    try {
      return new CharTokenizer(tokens, specials, { addBos, chatTemplate: chatTemplate ?? templateOf(config, source) });
    } catch (e) {
      return fail((e as Error).message);
    }
  }

  encode(text: string): number[] {
    const out: number[] = [];
    for (const ch of text) out.push(this.charToId.get(ch) ?? this.unkId);
    return out;
  }

  idToToken(id: number): string | undefined {
    return this.tokens[id];
  }

  decode(ids: readonly number[]): string {
    let s = '';
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0) throw new TokenizerError(`decode: invalid token id ${id}`);
      if (this.specialIds.has(id) || id >= this.vocabSize) continue;
      s += this.tokens[id]!;
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
      // BOS before a prompt when addBos (HF's `add_special_tokens=True`), as encodePrompt does.
      // (an explicit template without BOS otherwise: a null post-processor marks files from before addBos)
      post_processor: bosTemplate(this.addBos ? this.specials.bos : null, this.bosId),
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
      add_bos_token: this.addBos,
      add_eos_token: false,
      clean_up_tokenization_spaces: false,
      ...(this.chatTemplate !== null ? { chat_template: this.chatTemplate } : {}),
    };
  }

  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(this.toJson(), null, 2) + '\n');
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(this.toConfigJson(), null, 2) + '\n');
  }
}

/** A TemplateProcessing post-processor that puts `bos` (when not null) before a sequence and before each of a pair. */
function bosTemplate(bos: string | null, bosId: number): Record<string, unknown> {
  const special = (typeId: number) => (bos === null ? [] : [{ SpecialToken: { id: bos, type_id: typeId } }]);
  return {
    type: 'TemplateProcessing',
    single: [...special(0), { Sequence: { id: 'A', type_id: 0 } }],
    pair: [...special(0), { Sequence: { id: 'A', type_id: 0 } }, ...special(1), { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: bos === null ? {} : { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
  };
}

/** The chat template of a tokenizer_config.json: a string, or the "default" (else first) of a named list. */
function templateOf(config: Record<string, unknown> | null, source: string): string | null {
  const t = config?.chat_template;
  if (t == null) return null;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t as { name?: unknown; template?: unknown }[];
    const pick = named.find((x) => x?.name === 'default') ?? named[0];
    if (typeof pick?.template === 'string') return pick.template;
  }
  throw new TokenizerError(`${source}: field chat_template: expected a string or a list of {name, template}`);
}

/** A special token's name in tokenizer_config.json: a string or an AddedToken-like {content}. */
function tokenName(config: Record<string, unknown> | null, key: string): string | null {
  const v = config?.[key];
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

/** Special tokens that a post-processor inserts before the sequence (TemplateProcessing, possibly in a Sequence). */
function leadingSpecials(pp: unknown): string[] {
  if (!pp || typeof pp !== 'object') return [];
  const p = pp as { type?: unknown; processors?: unknown; single?: unknown };
  if (p.type === 'Sequence' && Array.isArray(p.processors)) return p.processors.flatMap(leadingSpecials);
  if (p.type === 'TemplateProcessing' && Array.isArray(p.single)) {
    const out: string[] = [];
    for (const piece of p.single as { SpecialToken?: { id?: unknown } }[]) {
      if (!piece?.SpecialToken) break;
      if (typeof piece.SpecialToken.id === 'string') out.push(piece.SpecialToken.id);
    }
    return out;
  }
  if (p.type === 'BertProcessing' || p.type === 'RobertaProcessing') {
    const cls = (pp as { cls?: unknown }).cls;
    return Array.isArray(cls) && typeof cls[0] === 'string' ? [cls[0]] : [];
  }
  return [];
}

/** The files of a tokenizer, parsed. */
export interface TokenizerFiles {
  dir: string;
  /** Path of tokenizer.json (named in errors). */
  file: string;
  json: unknown;
  /** The text of tokenizer.json, written back as is by HFTokenizer.save. */
  text: string;
  config: Record<string, unknown> | null;
  configText: string | null;
  /** From chat_template.jinja, chat_template.json or tokenizer_config.json. */
  chatTemplate: string | null;
  /** The file the chat template came from (null: none, or tokenizer_config.json). */
  chatTemplateFile: 'chat_template.jinja' | 'chat_template.json' | null;
  /** eos_token_id(s) of generation_config.json, else config.json (fallback when tokenizer_config names no EOS). */
  modelEosIds: number[];
  modelBosId: number | null;
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TokenizerError(`${path}: cannot read: ${(e as Error).message}`);
  }
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${path}: invalid JSON: ${(e as Error).message}`);
  }
}

function idList(v: unknown): number[] {
  const list = Array.isArray(v) ? v : v == null ? [] : [v];
  return list.filter((x): x is number => Number.isInteger(x) && (x as number) >= 0);
}

/** Read tokenizer.json, tokenizer_config.json, the chat template files and the model's eos/bos ids. */
export async function readTokenizerFiles(dir: string): Promise<TokenizerFiles> {
  const file = join(dir, 'tokenizer.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new TokenizerError(`${file}: cannot read tokenizer: ${(e as Error).message}`);
  }
  const json = parseJson(text, file);
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new TokenizerError(`${file}: not a JSON object`);
  const cfgFile = join(dir, 'tokenizer_config.json');
  const configText = await readOptional(cfgFile); // optional: default special token names are used
  const config = configText === null ? null : parseJson(configText, cfgFile);
  if (config !== null && (typeof config !== 'object' || Array.isArray(config))) throw new TokenizerError(`${cfgFile}: not a JSON object`);
  let chatTemplate = templateOf(config as Record<string, unknown> | null, cfgFile);
  let chatTemplateFile: TokenizerFiles['chatTemplateFile'] = null;
  const jinja = await readOptional(join(dir, 'chat_template.jinja'));
  const ctJsonPath = join(dir, 'chat_template.json');
  const ctJson = jinja === null ? await readOptional(ctJsonPath) : null;
  if (jinja !== null) {
    chatTemplate = jinja;
    chatTemplateFile = 'chat_template.jinja';
  } else if (ctJson !== null) {
    const t = templateOf(parseJson(ctJson, ctJsonPath) as Record<string, unknown>, ctJsonPath);
    if (t === null) throw new TokenizerError(`${ctJsonPath}: field chat_template is missing`);
    chatTemplate = t;
    chatTemplateFile = 'chat_template.json';
  }
  let modelEosIds: number[] = [];
  let modelBosId: number | null = null;
  for (const name of ['generation_config.json', 'config.json']) {
    const t = await readOptional(join(dir, name));
    if (t === null) continue;
    const j = parseJson(t, join(dir, name)) as { eos_token_id?: unknown; bos_token_id?: unknown } | null;
    if (modelEosIds.length === 0) modelEosIds = idList(j?.eos_token_id);
    if (modelBosId === null) modelBosId = idList(j?.bos_token_id)[0] ?? null;
  }
  return { dir, file, json, text, config: config as Record<string, unknown> | null, configText, chatTemplate, chatTemplateFile, modelEosIds, modelBosId };
}

/** Whether a WordLevel tokenizer.json is the character-level kind CharTokenizer implements. */
function isCharLevel(json: unknown, config: Record<string, unknown> | null): boolean {
  const j = json as { model?: { type?: unknown; vocab?: unknown } };
  if (j.model?.type !== 'WordLevel' || !j.model.vocab || typeof j.model.vocab !== 'object') return false;
  const specials = new Set(['pad_token', 'bos_token', 'eos_token', 'unk_token'].map((k) => tokenName(config, k)).filter((x) => x !== null));
  for (const t of Object.values(DEFAULT_SPECIALS)) specials.add(t);
  return Object.keys(j.model.vocab as object).every((t) => specials.has(t) || [...t].length === 1);
}

/**
 * Load the tokenizer of a model folder (tokenizer.json + optional tokenizer_config.json, chat template files,
 * generation_config.json / config.json for the EOS id when tokenizer_config.json names none).
 * Character-level WordLevel files load as {@link CharTokenizer}, everything else as {@link HFTokenizer}.
 */
export async function loadTokenizer(dir: string): Promise<TextTokenizer> {
  const files = await readTokenizerFiles(dir);
  const type = (files.json as { model?: { type?: unknown } }).model?.type;
  if (type === 'WordLevel' && isCharLevel(files.json, files.config)) {
    return CharTokenizer.fromJson(files.json, files.config, files.file, files.chatTemplate);
  }
  return HFTokenizer.fromFiles(files);
}

/**
 * A Hugging Face tokenizer.json (BPE, WordPiece, Unigram, WordLevel) run by `@huggingface/tokenizers`. Special
 * tokens from tokenizer_config.json; `save` writes the files back unchanged.
 */
export class HFTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly eosId: number;
  readonly padId: number;
  readonly bosId: number | null;
  readonly unkId: number | null;
  readonly addBos: boolean;
  readonly chatTemplate: string | null;
  readonly specialIds: ReadonlySet<number>;
  private readonly tok: HFTokenizerImpl;

  private constructor(private readonly files: TokenizerFiles) {
    const fail = (msg: string): never => {
      throw new TokenizerError(`${msg}`);
    };
    const cfgFile = join(files.dir, 'tokenizer_config.json');
    try {
      this.tok = new HFTokenizerImpl(files.json as object, files.config ?? {});
    } catch (e) {
      throw new TokenizerError(`${files.file}: cannot build the tokenizer: ${(e as Error).message}`);
    }
    const vocab = this.tok.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    const idOf = (key: string): number | null => {
      const name = tokenName(files.config, key);
      if (name === null) return null;
      const id = this.tok.token_to_id(name);
      if (id === undefined) return fail(`${cfgFile}: field ${key}: token ${JSON.stringify(name)} is not in the vocabulary of ${files.file}`);
      return id;
    };
    const eos = idOf('eos_token') ?? files.modelEosIds[0] ?? null;
    if (eos === null) {
      fail(`${cfgFile}: no eos_token (and no eos_token_id in generation_config.json or config.json): cannot tell where a completion ends`);
    }
    this.eosId = eos!;
    this.bosId = idOf('bos_token');
    this.padId = idOf('pad_token') ?? this.eosId;
    this.unkId = idOf('unk_token');
    const addBos = files.config?.add_bos_token;
    if (addBos !== undefined && addBos !== null && typeof addBos !== 'boolean') fail(`${cfgFile}: field add_bos_token: must be true or false`);
    const bosName = this.bosId === null ? null : this.tok.id_to_token(this.bosId);
    this.addBos =
      this.bosId !== null && (typeof addBos === 'boolean' ? addBos : bosName !== undefined && leadingSpecials((files.json as { post_processor?: unknown }).post_processor).includes(bosName!));
    this.chatTemplate = files.chatTemplate;
    const special = new Set<number>();
    for (const [id, t] of this.tok.get_added_tokens_decoder()) if (t.special) special.add(id);
    this.specialIds = special;
  }

  /** Build from files read by {@link readTokenizerFiles}. */
  static fromFiles(files: TokenizerFiles): HFTokenizer {
    return new HFTokenizer(files);
  }

  static async load(dir: string): Promise<HFTokenizer> {
    return new HFTokenizer(await readTokenizerFiles(dir));
  }

  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[]): string {
    for (const id of ids) if (!Number.isInteger(id) || id < 0) throw new TokenizerError(`decode: invalid token id ${id}`);
    return this.tok.decode(
      ids.filter((id) => id < this.vocabSize),
      { skip_special_tokens: true },
    );
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /** The token string -> id (undefined when unknown). */
  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'tokenizer.json'), this.files.text);
    if (this.files.configText !== null) await writeFile(join(dir, 'tokenizer_config.json'), this.files.configText);
    if (this.files.chatTemplateFile === 'chat_template.jinja') await writeFile(join(dir, 'chat_template.jinja'), this.files.chatTemplate!);
    if (this.files.chatTemplateFile === 'chat_template.json') {
      await writeFile(join(dir, 'chat_template.json'), JSON.stringify({ chat_template: this.files.chatTemplate }, null, 2) + '\n');
    }
  }
}
