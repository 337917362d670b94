/**
 * Policy: the language model the pipeline stages use. Holds the weights as tf.Variables keyed by their
 * Hugging Face names, the tokenizer, and reads/writes a Hugging Face model folder:
 *
 *   config.json             model config (see config.ts)
 *   model.safetensors       weights, HF names and layout (or model.safetensors.index.json + shards)
 *   tokenizer.json          HF tokenizer (+ tokenizer_config.json, chat_template.jinja)
 *   generation_config.json  bos/eos/pad ids, sampling defaults (its eos ids also stop generation)
 *
 * Loading reads one tensor at a time into its variable (names and shapes are checked against the config from
 * the safetensors headers first), so a checkpoint is in memory once, as the model's float32 weights.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng, writeFolderAtomic } from '@empo/core';
import { open, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { applyChatTemplate, type ChatMessage, type ChatTemplateOptions } from './chat.ts';
import { ConfigError, configToJson, eosIds, readModelConfig, type ModelConfig } from './config.ts';
import { generate, generateUncached, releasePreparedWeights, type GenerateOptions, type GenerateResult, type GenerationModel } from './generate.ts';
import { completionLogprobs, sequenceLogits, sequenceLogprobs, type LogprobOptions } from './logprobs.ts';
import { initWeights, weightSpecs, type WeightSpec } from './model.ts';
import { SafetensorsError, SafetensorsReader, tensorBytes, writeSafetensors, type HostTensor, type LazyTensor } from './safetensors.ts';
import { loadTokenizer, type TextTokenizer } from './tokenizer.ts';

export interface SaveOptions {
  /** Storage dtype of the weights (default F32). */
  dtype?: 'F32' | 'BF16';
  /**
   * Split the weights into shards of at most this many bytes (`model-00001-of-0000N.safetensors` and
   * `model.safetensors.index.json`, as transformers writes them) when they are larger. Default: one file.
   */
  maxShardBytes?: number;
}

export interface PolicyOptions {
  /** Extra token ids that end generation (e.g. from generation_config.json). */
  extraEosIds?: number[];
  /** generation_config.json as read (written back, with the eos ids updated, by `save`). */
  generationConfig?: Record<string, unknown>;
}

/** How a prompt is turned into ids (see {@link Policy.encodePrompt}). */
export interface PromptOptions {
  /**
   * Render the text as one user message with the tokenizer's chat template (and add the generation prompt);
   * an object also sets a system message and template options.
   */
  chat?: boolean | ({ system?: string } & ChatTemplateOptions);
}

type Source = HostTensor | tf.Tensor;

export class Policy implements GenerationModel {
  /** Ids that end a sequence in `generate`: config eos_token_id(s), the tokenizer's EOS, generation_config's. */
  readonly stopIds: ReadonlySet<number>;
  /** Filler id for padded positions (never attended to): config pad_token_id, else the tokenizer's. */
  readonly padId: number;
  /** generation_config.json of the folder this policy was loaded from ({} otherwise). */
  readonly generationConfig: Readonly<Record<string, unknown>>;
  private readonly vars: Map<string, tf.Variable>;
  private disposed = false;

  private constructor(
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer,
    vars: Map<string, tf.Variable>,
    opts: PolicyOptions = {},
  ) {
    this.vars = vars;
    this.stopIds = new Set([...eosIds(config), tokenizer.eosId, ...(opts.extraEosIds ?? [])]);
    this.padId = config.pad_token_id ?? tokenizer.padId;
    this.generationConfig = opts.generationConfig ?? {};
  }

  /** A freshly initialised model (seeded, identical on every backend). */
  static init(config: ModelConfig, tokenizer: TextTokenizer, seed: number | Rng): Policy {
    const s = typeof seed === 'number' ? seed : seed.nextUint32();
    return Policy.fromWeights(config, tokenizer, initWeights(config, s));
  }

  /** A model from host tensors keyed by Hugging Face names (HF layout). */
  static fromWeights(config: ModelConfig, tokenizer: TextTokenizer, weights: ReadonlyMap<string, HostTensor>, opts: PolicyOptions = {}): Policy {
    return Policy.fromSources(config, tokenizer, weights, opts, 'weights');
  }

  private static fromSources(config: ModelConfig, tokenizer: TextTokenizer, weights: ReadonlyMap<string, Source>, opts: PolicyOptions, source: string): Policy {
    checkVocab(config, tokenizer, 'config', 'the tokenizer');
    const specs = checkTensors(config, new Map([...weights].map(([n, w]) => [n, w.shape])), () => source);
    const vars = new Map<string, tf.Variable>();
    try {
      for (const s of specs) vars.set(s.name, makeVariable(weights.get(s.name)!));
    } catch (e) {
      for (const v of vars.values()) v.dispose();
      throw e;
    }
    return new Policy(config, tokenizer, vars, opts);
  }

  /**
   * Read a model folder (config.json, model.safetensors or its sharded form, tokenizer files,
   * generation_config.json). The weights are read tensor by tensor. Errors name the file and field/tensor.
   */
  static async load(dir: string): Promise<Policy> {
    const config = await readModelConfig(join(dir, 'config.json'));
    const tokenizer = await loadTokenizer(dir);
    checkVocab(config, tokenizer, join(dir, 'config.json'), join(dir, 'tokenizer.json'));
    const generationConfig = await readGenerationConfig(join(dir, 'generation_config.json'));
    const files = await openWeights(dir);
    const vars = new Map<string, tf.Variable>();
    try {
      const shapes = new Map([...files.where].map(([name, r]) => [name, r.entries.get(name)!.shape]));
      const specs = checkTensors(config, shapes, (name) => (name ? files.where.get(name)?.path : undefined) ?? files.source);
      for (const s of specs) vars.set(s.name, makeVariable(await files.where.get(s.name)!.read(s.name)));
    } catch (e) {
      for (const v of vars.values()) v.dispose();
      throw e;
    } finally {
      await Promise.all(files.readers.map((r) => r.close()));
    }
    return new Policy(config, tokenizer, vars, { extraEosIds: eosIds(generationConfig as { eos_token_id?: number[] }), generationConfig });
  }

  /**
   * Write the model folder atomically: the files go into a temporary sibling folder that is
   * then renamed to `dir` (an existing `dir` is moved aside first and removed afterwards).
   */
  async save(dir: string, opts: SaveOptions = {}): Promise<void> {
    this.check();
    await writeFolderAtomic(resolve(dir), (tmp) => this.writeFiles(tmp, opts));
  }

  /**
   * Write config.json, the weights, the tokenizer files and generation_config.json into
   * an existing folder (not atomic by itself: `save`, and the trainer's checkpoints, wrap it).
   * Weights are downloaded and written one tensor at a time.
   */
  async writeFiles(dir: string, opts: SaveOptions = {}): Promise<void> {
    this.check();
    const dtype = opts.dtype ?? 'F32';
    await writeJson(join(dir, 'config.json'), configToJson(this.config, dtype === 'BF16' ? 'bfloat16' : 'float32'));
    const lazy: [string, LazyTensor][] = [...this.vars].map(([name, v]) => [name, { shape: [...v.shape], data: async () => (await v.data()) as Float32Array }]);
    const shards = shard(lazy, dtype, opts.maxShardBytes);
    if (shards.length === 1) {
      await writeSafetensors(join(dir, 'model.safetensors'), lazy, { dtype });
    } else {
      const weightMap: Record<string, string> = {};
      let total = 0;
      for (let i = 0; i < shards.length; i++) {
        const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
        await writeSafetensors(join(dir, file), shards[i]!, { dtype });
        for (const [name, t] of shards[i]!) {
          weightMap[name] = file;
          total += tensorBytes(t.shape, dtype);
        }
      }
      await writeJson(join(dir, 'model.safetensors.index.json'), { metadata: { total_size: total }, weight_map: weightMap });
    }
    await this.tokenizer.save(dir);
    await writeJson(join(dir, 'generation_config.json'), {
      do_sample: true,
      temperature: 1.0,
      top_p: 1.0,
      ...this.generationConfig,
      bos_token_id: this.config.bos_token_id ?? this.tokenizer.bosId,
      eos_token_id: [...this.stopIds],
      pad_token_id: this.padId,
    });
  }

  /**
   * Token ids of a prompt. Plain text: the tokenizer's BOS token first when the tokenizer adds one
   * (`tokenizer.addBos`: HF's add_bos_token / post-processor; the character tokenizer does), then the text's
   * tokens. With `chat`: the text as a user message rendered with the chat template (which writes any BOS
   * itself), then tokenized.
   */
  encodePrompt(text: string, opts: PromptOptions = {}): number[] {
    if (opts.chat) {
      const o = typeof opts.chat === 'object' ? opts.chat : {};
      const messages: ChatMessage[] = [...(o.system !== undefined ? [{ role: 'system', content: o.system }] : []), { role: 'user', content: text }];
      return this.tokenizer.encode(applyChatTemplate(this.tokenizer, messages, o));
    }
    const bos = this.tokenizer.bosId;
    const ids = this.tokenizer.encode(text);
    return bos !== null && this.tokenizer.addBos ? [bos, ...ids] : ids;
  }

  /** Weights keyed by Hugging Face name (tf.Variables, HF layout). */
  get weights(): ReadonlyMap<string, tf.Tensor> {
    this.check();
    return this.vars;
  }

  /** Trainable weights in a stable order (embeddings, layer 0.., final norm, lm_head). */
  variables(): tf.Variable[] {
    this.check();
    return [...this.vars.values()];
  }

  namedVariables(): Map<string, tf.Variable> {
    this.check();
    return new Map(this.vars);
  }

  numParameters(): number {
    let n = 0;
    for (const v of this.vars.values()) n += v.size;
    return n;
  }

  /** Weights copied to the host (HF names and layout). */
  async hostWeights(): Promise<Map<string, HostTensor>> {
    this.check();
    const out = new Map<string, HostTensor>();
    // slice(): some backends (cpu) hand out their own buffer; the caller may mutate what it gets.
    for (const [name, v] of this.vars) out.set(name, { shape: [...v.shape], data: ((await v.data()) as Float32Array).slice() });
    return out;
  }

  /** An independent copy (new variables). */
  clone(): Policy {
    this.check();
    return Policy.fromSources(this.config, this.tokenizer, this.vars, { extraEosIds: [...this.stopIds], generationConfig: { ...this.generationConfig } }, 'clone');
  }

  /** Overwrite these weights with another policy's (same config). */
  copyWeightsFrom(other: Policy): void {
    this.check();
    for (const [name, v] of this.vars) {
      const src = other.vars.get(name);
      if (!src || src.shape.join() !== v.shape.join()) throw new Error(`copyWeightsFrom: incompatible tensor ${name}`);
      v.assign(src);
    }
  }

  /** Differentiable logits [B, T, V] of right-padded sequences. */
  logits(inputIds: number[][]): tf.Tensor3D {
    this.check();
    return sequenceLogits(this.config, this.vars, this.padId, inputIds);
  }

  /**
   * Differentiable [B, T-1]: out[b][t] = log p(ids[b][t+1] | ids[b][..t]) (logits / temperature), T the longest
   * sequence, 0 past each row's end. Use inside tf.variableGrads / optimizer.minimize.
   */
  sequenceLogprobs(inputIds: number[][], opts: LogprobOptions = {}): tf.Tensor2D {
    this.check();
    return sequenceLogprobs(this.config, this.vars, this.padId, inputIds, opts);
  }

  /** Per sequence, the teacher-forced log-probs of the completion tokens given the prompt. */
  completionLogprobs(promptIds: number[][], completionIds: number[][], opts: LogprobOptions = {}): number[][] {
    this.check();
    return completionLogprobs(this.config, this.vars, this.padId, promptIds, completionIds, opts);
  }

  /** Batched sampling with a KV cache (see generate.ts). */
  generate(promptIds: number[][], opts: GenerateOptions): GenerateResult {
    this.check();
    return generate(this, promptIds, opts);
  }

  /** Same results as `generate`, recomputing the whole sequence each step (slow; for tests). */
  generateUncached(promptIds: number[][], opts: GenerateOptions): GenerateResult {
    this.check();
    return generateUncached(this, promptIds, opts);
  }

  dispose(): void {
    if (this.disposed) return;
    releasePreparedWeights(this.vars);
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    this.disposed = true;
  }

  private check(): void {
    if (this.disposed) throw new Error('Policy has been disposed');
  }
}

/** A variable holding a copy of `w` (host data is uploaded; a tensor is cloned). */
function makeVariable(w: Source): tf.Variable {
  return tf.tidy(() => tf.variable(w instanceof tf.Tensor ? tf.clone(w) : tf.tensor(w.data, w.shape, 'float32'), true));
}

/** The tokenizer's ids must fit the model's vocabulary. */
function checkVocab(config: ModelConfig, tokenizer: TextTokenizer, configName: string, tokenizerName: string): void {
  if (tokenizer.vocabSize > config.vocab_size) {
    throw new ConfigError(`${configName}: field vocab_size: ${config.vocab_size} is smaller than the ${tokenizer.vocabSize} tokens of ${tokenizerName}`);
  }
}

/**
 * Names and shapes of the stored tensors against the config: every expected tensor present with its shape, no
 * unknown ones (`*.rotary_emb.inv_freq` buffers and a tied model's lm_head.weight are ignored). `where(name)`
 * names the file holding a tensor. Returns the specs in variable order.
 */
function checkTensors(config: ModelConfig, shapes: ReadonlyMap<string, readonly number[]>, where: (name?: string) => string): WeightSpec[] {
  const specs = weightSpecs(config);
  const known = new Set(specs.map((s) => s.name));
  for (const name of shapes.keys()) {
    const ignorable = name.endsWith('.rotary_emb.inv_freq') || (name === 'lm_head.weight' && config.tie_word_embeddings);
    if (!known.has(name) && !ignorable) throw new SafetensorsError(`${where(name)}: unexpected tensor ${name} for this config`);
  }
  for (const s of specs) {
    const shape = shapes.get(s.name);
    if (!shape) throw new SafetensorsError(`${where()}: missing tensor ${s.name}`);
    if (shape.length !== s.shape.length || shape.some((d, i) => d !== s.shape[i])) {
      throw new SafetensorsError(`${where(s.name)}: tensor ${s.name} has shape [${shape}], config expects [${s.shape}]`);
    }
  }
  return specs;
}

/** Group tensors into shards of at most maxBytes each (a tensor larger than that gets a shard of its own). */
function shard<T extends { shape: number[] }>(tensors: [string, T][], dtype: 'F32' | 'BF16', maxBytes?: number): [string, T][][] {
  if (maxBytes === undefined) return [tensors];
  if (!(maxBytes > 0)) throw new Error(`save: maxShardBytes must be positive, got ${maxBytes}`);
  const out: [string, T][][] = [[]];
  let size = 0;
  for (const entry of tensors) {
    const n = tensorBytes(entry[1].shape, dtype);
    if (size > 0 && size + n > maxBytes) {
      out.push([]);
      size = 0;
    }
    out.at(-1)!.push(entry);
    size += n;
  }
  return out;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function writeJson(path: string, value: unknown): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(JSON.stringify(value, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * model.safetensors, or model.safetensors.index.json and its shards, opened (headers read and validated).
 * `where` maps each tensor to the reader of its file.
 */
async function openWeights(dir: string): Promise<{ readers: SafetensorsReader[]; where: Map<string, SafetensorsReader>; source: string }> {
  const single = join(dir, 'model.safetensors');
  const readers: SafetensorsReader[] = [];
  const where = new Map<string, SafetensorsReader>();
  try {
    if (await exists(single)) {
      const r = await SafetensorsReader.open(single);
      readers.push(r);
      for (const name of r.entries.keys()) where.set(name, r);
      return { readers, where, source: single };
    }
    const indexPath = join(dir, 'model.safetensors.index.json');
    if (!(await exists(indexPath))) throw new SafetensorsError(`${single}: missing (and no model.safetensors.index.json in ${dir})`);
    let weightMap: Record<string, unknown>;
    try {
      weightMap = (JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map: Record<string, unknown> }).weight_map;
    } catch (e) {
      throw new SafetensorsError(`${indexPath}: invalid JSON: ${(e as Error).message}`);
    }
    if (!weightMap || typeof weightMap !== 'object' || Array.isArray(weightMap)) throw new SafetensorsError(`${indexPath}: field weight_map: missing or not an object`);
    const byFile = new Map<string, SafetensorsReader>();
    for (const [name, file] of Object.entries(weightMap)) {
      if (typeof file !== 'string' || file.includes('/') || file.includes('\\') || file.startsWith('.')) {
        throw new SafetensorsError(`${indexPath}: field weight_map.${name}: invalid shard file name ${JSON.stringify(file)}`);
      }
      let r = byFile.get(file);
      if (!r) {
        r = await SafetensorsReader.open(join(dir, file));
        byFile.set(file, r);
        readers.push(r);
      }
      if (!r.entries.has(name)) throw new SafetensorsError(`${r.path}: missing tensor ${name} (listed in ${indexPath})`);
      where.set(name, r);
    }
    for (const r of readers) {
      for (const name of r.entries.keys()) {
        if (!where.has(name)) throw new SafetensorsError(`${r.path}: tensor ${name} is not listed in ${indexPath}`);
      }
    }
    return { readers, where, source: indexPath };
  } catch (e) {
    await Promise.all(readers.map((r) => r.close()));
    throw e;
  }
}

/** generation_config.json ({} when absent). Its eos_token_id(s) must be non-negative integers. */
async function readGenerationConfig(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return {}; // optional
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: invalid JSON: ${(e as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new ConfigError(`${path}: not a JSON object`);
  const eos = (json as { eos_token_id?: unknown }).eos_token_id;
  const list = eos == null ? [] : Array.isArray(eos) ? eos : [eos];
  if (!list.every((i) => Number.isInteger(i) && (i as number) >= 0)) {
    throw new ConfigError(`${path}: field eos_token_id: must be a non-negative integer or a list of them, got ${JSON.stringify(eos)}`);
  }
  return json as Record<string, unknown>;
}
