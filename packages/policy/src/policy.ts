/**
 * Policy: the language model the pipeline stages use. Holds the weights as tf.Variables keyed by their
 * Hugging Face names, the tokenizer, and reads/writes a Hugging Face style model folder:
 *
 *   config.json             model config (see config.ts)
 *   model.safetensors       weights, HF names and layout (or model.safetensors.index.json + shards, read only)
 *   tokenizer.json          HF tokenizer
 *   tokenizer_config.json   special token names
 *   generation_config.json  bos/eos/pad ids (read: extra EOS ids)
 */
import * as tf from '@tensorflow/tfjs';
import { Rng, writeFolderAtomic } from '@empo/core';
import { open, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { configToJson, eosIds, readModelConfig, type ModelConfig } from './config.ts';
import { generate, generateUncached, type GenerateOptions, type GenerateResult, type GenerationModel } from './generate.ts';
import { completionLogprobs, sequenceLogits, sequenceLogprobs, type LogprobOptions } from './logprobs.ts';
import { initWeights, weightSpecs } from './model.ts';
import { readSafetensors, SafetensorsError, writeSafetensors, type HostTensor } from './safetensors.ts';
import { loadTokenizer, type TextTokenizer } from './tokenizer.ts';

export interface SaveOptions {
  /** Storage dtype of model.safetensors (default F32). */
  dtype?: 'F32' | 'BF16';
}

export interface PolicyOptions {
  /** Extra token ids that end generation (e.g. from generation_config.json). */
  extraEosIds?: number[];
}

export class Policy implements GenerationModel {
  /** Ids that end a sequence in `generate`: config eos_token_id(s), the tokenizer's EOS, generation_config's. */
  readonly stopIds: ReadonlySet<number>;
  /** Filler id for padded positions (never attended to): config pad_token_id, else the tokenizer's. */
  readonly padId: number;
  private readonly vars: Map<string, tf.Variable>;
  private disposed = false;

  private constructor(
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer,
    weights: ReadonlyMap<string, HostTensor | tf.Tensor>,
    opts: PolicyOptions = {},
    source = 'weights',
  ) {
    if (tokenizer.vocabSize > config.vocab_size) {
      throw new Error(`tokenizer has ${tokenizer.vocabSize} tokens but config vocab_size is ${config.vocab_size}`);
    }
    this.stopIds = new Set([...eosIds(config), tokenizer.eosId, ...(opts.extraEosIds ?? [])]);
    this.padId = config.pad_token_id ?? tokenizer.padId;
    const specs = weightSpecs(config);
    const known = new Set(specs.map((s) => s.name));
    for (const name of weights.keys()) {
      const ignorable = name.endsWith('.rotary_emb.inv_freq') || (name === 'lm_head.weight' && config.tie_word_embeddings);
      if (!known.has(name) && !ignorable) throw new SafetensorsError(`${source}: unexpected tensor ${name} for this config`);
    }
    this.vars = new Map();
    try {
      for (const s of specs) {
        const w = weights.get(s.name);
        if (!w) throw new SafetensorsError(`${source}: missing tensor ${s.name}`);
        if (w.shape.length !== s.shape.length || w.shape.some((d, i) => d !== s.shape[i])) {
          throw new SafetensorsError(`${source}: tensor ${s.name} has shape [${w.shape}], config expects [${s.shape}]`);
        }
        const v = tf.tidy(() => tf.variable(w instanceof tf.Tensor ? tf.clone(w) : tf.tensor(w.data, w.shape, 'float32'), true));
        this.vars.set(s.name, v);
      }
    } catch (e) {
      for (const v of this.vars.values()) v.dispose();
      throw e;
    }
  }

  /** A freshly initialised model (seeded, identical on every backend). */
  static init(config: ModelConfig, tokenizer: TextTokenizer, seed: number | Rng): Policy {
    const s = typeof seed === 'number' ? seed : seed.nextUint32();
    return new Policy(config, tokenizer, initWeights(config, s));
  }

  /** A model from host tensors keyed by Hugging Face names (HF layout). */
  static fromWeights(config: ModelConfig, tokenizer: TextTokenizer, weights: ReadonlyMap<string, HostTensor>, opts: PolicyOptions = {}): Policy {
    return new Policy(config, tokenizer, weights, opts);
  }

  /** Read a model folder (config.json, model.safetensors, tokenizer.json, ...). Errors name the file. */
  static async load(dir: string): Promise<Policy> {
    const config = await readModelConfig(join(dir, 'config.json'));
    const tokenizer = await loadTokenizer(dir);
    const { tensors, source } = await readWeights(dir);
    const extraEosIds = await readGenerationEos(join(dir, 'generation_config.json'));
    return new Policy(config, tokenizer, tensors, { extraEosIds }, source);
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
   * Write config.json, model.safetensors, the tokenizer files and generation_config.json into
   * an existing folder (not atomic by itself: `save`, and the trainer's checkpoints, wrap it).
   */
  async writeFiles(dir: string, opts: SaveOptions = {}): Promise<void> {
    this.check();
    const dtype = opts.dtype ?? 'F32';
    const host = await this.hostWeights();
    await writeJson(join(dir, 'config.json'), configToJson(this.config, dtype === 'BF16' ? 'bfloat16' : 'float32'));
    await writeSafetensors(join(dir, 'model.safetensors'), host, { dtype });
    await this.tokenizer.save(dir);
    await writeJson(join(dir, 'generation_config.json'), {
      bos_token_id: this.config.bos_token_id ?? this.tokenizer.bosId,
      eos_token_id: [...this.stopIds],
      pad_token_id: this.padId,
      do_sample: true,
      temperature: 1.0,
      top_p: 1.0,
    });
  }

  /** Token ids of a prompt: the tokenizer's BOS token first when it has one, then the text's tokens. */
  encodePrompt(text: string): number[] {
    const bos = this.tokenizer.bosId;
    const ids = this.tokenizer.encode(text);
    return bos === null ? ids : [bos, ...ids];
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
    return new Policy(this.config, this.tokenizer, this.vars, { extraEosIds: [...this.stopIds] });
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
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    this.disposed = true;
  }

  private check(): void {
    if (this.disposed) throw new Error('Policy has been disposed');
  }
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

/** model.safetensors, or model.safetensors.index.json and its shards. */
async function readWeights(dir: string): Promise<{ tensors: Map<string, HostTensor>; source: string }> {
  const single = join(dir, 'model.safetensors');
  if (await exists(single)) return { tensors: (await readSafetensors(single)).tensors, source: single };
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (!(await exists(indexPath))) throw new SafetensorsError(`${single}: missing (and no model.safetensors.index.json in ${dir})`);
  let weightMap: Record<string, string>;
  try {
    weightMap = (JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
    if (!weightMap || typeof weightMap !== 'object') throw new Error('no weight_map');
  } catch (e) {
    throw new SafetensorsError(`${indexPath}: invalid index: ${(e as Error).message}`);
  }
  const tensors = new Map<string, HostTensor>();
  for (const shard of new Set(Object.values(weightMap))) {
    for (const [name, t] of (await readSafetensors(join(dir, shard))).tensors) tensors.set(name, t);
  }
  return { tensors, source: indexPath };
}

async function readGenerationEos(path: string): Promise<number[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return []; // optional
  }
  try {
    const ids = eosIds(JSON.parse(text) as { eos_token_id?: number | number[] | null });
    if (!ids.every((i) => Number.isInteger(i) && i >= 0)) throw new Error('eos_token_id must be non-negative integers');
    return ids;
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}
