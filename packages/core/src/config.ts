import { existsSync, readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { BACKEND_NAMES } from './backend.ts';
import { EmpoError } from './errors.ts';

/**
 * The run configuration. Every field has a default, so an empty config is the bundled
 * default run. Unknown keys and wrong types are errors that name the key.
 */
export const samplerConfigSchema = z.strictObject({
  questions_per_step: z.number().int().positive().default(16)
    .describe('Questions sampled per training step (the batch of groups).'),
  num_generations: z.number().int().min(2).default(8)
    .describe('G: completions sampled per question. The paper uses 7-16.'),
  max_new_tokens: z.number().int().positive().default(48)
    .describe('Longest completion, in tokens; longer ones are cut (finished = false).'),
  temperature: z.number().min(0).default(1)
    .describe('Sampling temperature; EMPO samples at about 1.0 so that answers disagree.'),
  top_p: z.number().gt(0).max(1).default(1)
    .describe('Nucleus sampling mass; 1.0 disables it.'),
  prompt_template: z.string().default('{question}\n')
    .describe('Prompt text; {question} is replaced by the question.'),
  chat: z.boolean().default(false)
    .describe("Render the prompt as a user message with the tokenizer's chat template (for instruction-tuned models)."),
  engine: z.enum(['local', 'openai']).default('local')
    .describe('Where completions come from: local (the TensorFlow.js policy in this process) or openai (an OpenAI-compatible server: the openai section, e.g. vLLM, SGLang, llama.cpp or `empo serve`).'),
});

export const clustererConfigSchema = z.strictObject({
  reward: z.enum(['empo', 'majority', 'random', 'format', 'gold']).default('empo')
    .describe('Reward: empo (cluster share), majority (TTRL), random, format, or gold (supervised baseline: needs gold_answers). Only gold reads labels.'),
  copy_guard: z.boolean().default(false)
    .describe('Treat a numeric answer that only repeats numbers of the question (no new number in the work) as unextractable: reward 0. Guards against the copy shortcut.'),
  answer_mode: z.enum(['math', 'choice', 'text']).default('math')
    .describe('How answers are extracted and compared: math (boxed answer, math equivalence), choice (option letter), text (free form; normalized text, then the judge if set).'),
  judge: z.discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('openai'),
      base_url: z.string().describe('OpenAI-compatible base URL of the verifier, ending in /v1.'),
      model: z.string().describe('Verifier model name.'),
      api_key_env: z.string().nullable().default(null).describe('Environment variable holding the API key (never logged).'),
      endpoint: z.enum(['chat', 'completions']).default('chat').describe('Which endpoint to ask.'),
      timeout_s: z.number().positive().default(30).describe('Request timeout.'),
      bidirectional: z.boolean().default(false).describe('Ask both ways (a ~ b and b ~ a): the stricter bidirectional entailment.'),
    }),
    z.strictObject({
      type: z.literal('local'),
      model: z.string().describe('Model folder of a local verifier; P(Yes) vs P(No) of its next token.'),
      bidirectional: z.boolean().default(false).describe('Ask both ways (a ~ b and b ~ a).'),
    }),
  ]).nullable().default(null)
    .describe('Verifier judge for free-form answers (answer_mode text): an OpenAI-compatible endpoint or a local model; null = normalized text equality only.'),
  gold_answers: z.string().nullable().default(null)
    .describe('Labeled Parquet (question_id, question, answer) covering the training questions; read only when reward = gold.'),
  entropy_low: z.number().min(0).default(0)
    .describe('Drop a question when its semantic entropy is <= this (all answers agree: no signal).'),
  entropy_high: z.number().positive().nullable().default(null)
    .describe('Drop a question when its entropy is >= this; null means ln(G) (every answer different).'),
  min_majority_share: z.number().min(0).max(1).default(0)
    .describe('Drop a question unless its largest cluster holds at least this share of the group.'),
});

export const trainerConfigSchema = z.strictObject({
  loss_type: z.enum(['grpo', 'dapo', 'dr_grpo', 'gspo']).default('grpo')
    .describe('grpo: token mean per sequence, then mean over sequences; dapo: token mean over the whole batch; dr_grpo: token sum / (sequences x max_new_tokens); gspo: one sequence-level ratio per sequence.'),
  learning_rate: z.number().positive().default(5e-5).describe('Peak AdamW learning rate.'),
  lr_scheduler: z.enum(['constant', 'cosine']).default('constant')
    .describe('constant, or cosine decay to 10% of the peak over max_steps (after warmup).'),
  warmup_steps: z.number().int().min(0).default(0).describe('Linear warmup from 0 over this many steps.'),
  max_steps: z.number().int().positive().default(100).describe('Length of the run the learning-rate schedule is laid out over.'),
  adam_beta1: z.number().min(0).lt(1).default(0.9).describe('AdamW beta1.'),
  adam_beta2: z.number().min(0).lt(1).default(0.999).describe('AdamW beta2.'),
  adam_epsilon: z.number().positive().default(1e-8).describe('AdamW epsilon.'),
  weight_decay: z.number().min(0).default(0).describe('Decoupled (AdamW) weight decay.'),
  max_grad_norm: z.number().positive().default(1).describe('Clip the global gradient norm to this value.'),
  epsilon: z.number().positive().default(0.2).describe('Lower clip range: the ratio is kept above 1 - epsilon.'),
  epsilon_high: z.number().positive().nullable().default(null)
    .describe('Upper clip range (ratio kept below 1 + epsilon_high); null = epsilon. DAPO uses 0.28.'),
  scale_rewards: z.enum(['group', 'batch', 'none']).default('group')
    .describe('Divide advantages by the reward std of the group (GRPO), of the whole batch, or not at all (Dr. GRPO).'),
  advantage_epsilon: z.number().positive().default(1e-4)
    .describe('Added to the reward std when scaling advantages.'),
  beta: z.number().min(0).default(0)
    .describe('KL penalty coefficient (k3 estimator) against the frozen reference model; 0 loads no reference.'),
  ref_model: z.string().nullable().default(null).describe('Reference model folder for the KL term; null = the base model.'),
  num_iterations: z.number().int().positive().default(1)
    .describe('Optimizer steps per rollout batch (the sampler\'s log-probs stay the old policy for all of them).'),
  old_logprobs: z.enum(['sampler', 'recompute']).default('sampler')
    .describe('Old-policy log-probs: the sampler\'s, or recomputed by the trainer (when another engine sampled).'),
  micro_batch_size: z.number().int().positive().default(32)
    .describe('Sequences per forward/backward pass; gradients are accumulated over micro-batches.'),
  save_steps: z.number().int().positive().default(1)
    .describe('empo train: write a checkpoint every this many steps (and at the end). Stage commands always write one.'),
  save_total_limit: z.number().int().positive().nullable().default(null)
    .describe('Keep only the newest N checkpoints (older ones are deleted); null keeps all.'),
  collapse_entropy_floor: z.number().nonnegative().nullable().default(0.05)
    .describe('Collapse guard (no labels): stop training when the mean semantic entropy of the last collapse_window batches falls below this; null disables.'),
  collapse_distinct_ratio: z.number().gt(0).lt(1).nullable().default(0.5)
    .describe('Collapse guard (no labels): stop when the share of distinct majority answers across questions, averaged over the last collapse_window batches, falls below this fraction of its value over the first collapse_window batches; null disables.'),
  collapse_window: z.number().int().positive().default(3)
    .describe('Batches averaged by the collapse guards (per-batch signals of 16 questions are noisy).'),
});

export const evaluatorConfigSchema = z.strictObject({
  max_new_tokens: z.number().int().positive().default(48).describe('Longest evaluation completion, in tokens.'),
  num_samples: z.number().int().min(0).default(8)
    .describe('k: completions sampled per question besides the greedy one (mean@k, maj@k, pass@k, semantic entropy); 0 = greedy only.'),
  temperature: z.number().gt(0).default(1).describe('Temperature of the k sampled completions.'),
  top_p: z.number().gt(0).max(1).default(1).describe('Nucleus mass of the k sampled completions.'),
  limit: z.number().int().positive().nullable().default(null).describe('Evaluate only the first N questions; null = all.'),
  batch_size: z.number().int().positive().default(256).describe('Sequences per generation call.'),
  engine: z.enum(['local', 'openai']).default('local')
    .describe('Where completions come from: local (the checkpoint in this process) or openai (an OpenAI-compatible server: the openai section).'),
  benchmarks: z.array(z.union([
    z.string(),
    z.strictObject({
      name: z.string().describe('Benchmark name: one of the built-in ones (math500, gsm8k, aime24, amc23, minerva_math, olympiadbench, mmlu_stem) or any name for a custom file.'),
      path: z.string().optional().describe('JSONL or Parquet file; default <datasets_dir>/<name>/test.jsonl for built-in names.'),
      question_field: z.string().optional().describe('Field holding the question (custom files; default question).'),
      answer_field: z.string().optional().describe('Field holding the reference answer or a solution ending in \\boxed{} / #### (custom files; default answer).'),
      choices_field: z.string().optional().describe('Field holding a list of options: makes it a multiple-choice benchmark (the answer is a 0-based index or a letter).'),
      template: z.string().optional().describe('Prompt template ({question}; {choices} for the listed options); default the benchmark\'s.'),
      limit: z.number().int().positive().optional().describe('Evaluate only the first N questions of this benchmark.'),
    }),
  ])).default([])
    .describe('Labeled benchmarks to evaluate on (names of built-in ones, or objects for custom JSONL/Parquet files); [] = the eval_queries file with sampler.prompt_template.'),
  datasets_dir: z.string().default('../shared/datasets')
    .describe('Folder holding the built-in benchmarks as <name>/test.jsonl.'),
  chat: z.boolean().default(false)
    .describe('Render benchmark prompts as a user message with the tokenizer\'s chat template (for instruction-tuned models).'),
});

export const openaiConfigSchema = z.strictObject({
  base_url: z.string().default('http://127.0.0.1:8000/v1')
    .describe('Base URL of the OpenAI-compatible API (ending in /v1), used when sampler.engine or evaluator.engine is openai.'),
  model: z.string().nullable().default(null)
    .describe('Model name sent with each request; null = the first model the server lists at /v1/models.'),
  api_key_env: z.string().nullable().default('OPENAI_API_KEY')
    .describe('Name of the environment variable holding the API key (sent as a Bearer token when set). The key itself never goes in a config, log or file.'),
  batch_size: z.number().int().positive().default(16)
    .describe('Prompts per /v1/completions request (the API takes a list of prompts).'),
  concurrency: z.number().int().positive().default(4).describe('Requests in flight at once.'),
  max_retries: z.number().int().min(0).default(5)
    .describe('Retries of a failed request (connection error, 408, 429, 5xx) with exponential backoff.'),
  timeout_s: z.number().positive().default(600).describe('Timeout of one request, in seconds.'),
});

export const configSchema = z.strictObject({
  run: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only').default('default')
    .describe('Run name: the run folder is <runs_dir>/<run>.'),
  runs_dir: z.string().default('data/runs').describe('Folder holding run folders (relative to the working directory).'),
  seed: z.number().int().min(0).default(0).describe('Seed for sampling and data order; same seed, same run.'),
  backend: z.enum(BACKEND_NAMES).default('wasm')
    .describe('TensorFlow.js backend: wasm (CPU default), cpu (slow, pure JS), webgpu (a GPU through Dawn; Mesa\'s software adapter when there is none), tensorflow (tfjs-node(-gpu), when installed), auto (tensorflow, else a real GPU adapter, else wasm). See docs/GPU.md.'),
  workers: z.number().int().positive().max(64).nullable().default(null)
    .describe('Worker threads for sampling and the policy update, each with its own backend (tfjs wasm runs one thread per instance); 1 = all in the main thread. Results are identical for any value. null = one per core (at most 4) on the CPU backends (wasm, cpu) for empo train, the main job and the benchmark, 1 on other backends and for single-stage commands (where starting workers costs more than it saves on small models).'),
  model: z.string().default('data/models/tiny-arith').describe('Base model folder (Hugging Face format): step 0 of the run.'),
  train_queries: z.string().default('data/tasks/arith/train.parquet')
    .describe('Unlabeled training questions (Parquet: question_id, question).'),
  eval_queries: z.string().default('data/tasks/arith/eval.parquet')
    .describe('Labeled evaluation questions (Parquet: question_id, question, answer).'),
  sampler: samplerConfigSchema.prefault({}),
  clusterer: clustererConfigSchema.prefault({}),
  trainer: trainerConfigSchema.prefault({}),
  evaluator: evaluatorConfigSchema.prefault({}),
  openai: openaiConfigSchema.prefault({}),
});

export type EmpoConfig = z.infer<typeof configSchema>;
export type SamplerConfig = EmpoConfig['sampler'];
export type ClustererConfig = EmpoConfig['clusterer'];
export type TrainerConfig = EmpoConfig['trainer'];
export type EvaluatorConfig = EmpoConfig['evaluator'];
export type OpenAIConfig = EmpoConfig['openai'];
export type BenchmarkConfig = EvaluatorConfig['benchmarks'][number];

/** Config files looked up in the working directory when no --config is given. */
export const defaultConfigFiles = ['empo.config.json', 'empo.config.yaml', 'empo.config.yml'];

function describeIssue(issue: z.core.$ZodIssue, source: string): string {
  const key = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    const prefix = key ? `${key}.` : '';
    return `${source}: unknown config key ${issue.keys.map((k) => `'${prefix}${k}'`).join(', ')}`;
  }
  return `${source}: config key '${key}': ${issue.message}`;
}

/** Validate a raw config object; errors name the key and where it came from. */
export function parseConfig(raw: unknown, source = 'config'): EmpoConfig {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) throw new EmpoError(result.error.issues.map((i) => describeIssue(i, source)).join('\n'));
  return result.data;
}

export function readConfigFile(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new EmpoError(`${path}: config file not found`);
  const text = readFileSync(path, 'utf8');
  let raw: unknown;
  try {
    raw = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new EmpoError(`${path}: cannot parse config (${(error as Error).message})`);
  }
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new EmpoError(`${path}: a config file must hold an object`);
  return raw as Record<string, unknown>;
}

/** Parse `key.sub=value`; the value is read as JSON when it parses (numbers, booleans, null), else as a string. */
export function parseOverride(text: string): [string[], unknown] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new EmpoError(`--set ${text}: expected KEY=VALUE, for example --set trainer.learning_rate=1e-4`);
  const path = text.slice(0, eq).trim().split('.');
  const valueText = text.slice(eq + 1);
  let value: unknown = valueText;
  try {
    value = JSON.parse(valueText);
  } catch {
    // a plain string
  }
  return [path, value];
}

export function applyOverride(raw: Record<string, unknown>, path: string[], value: unknown): void {
  let node: Record<string, unknown> = raw;
  for (const part of path.slice(0, -1)) {
    const next = node[part];
    if (next === undefined) node[part] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      throw new EmpoError(`--set ${path.join('.')}: '${part}' is not a section`);
    }
    node = node[part] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

export interface LoadConfigOptions {
  /** Config file; when absent, the first of `defaultConfigFiles` found in `cwd` is used, if any. */
  file?: string;
  /** `key.sub=value` overrides (from --set), applied after the file. */
  overrides?: string[];
  cwd?: string;
}

/** The resolved config: defaults, then the config file, then --set overrides, validated. */
export function loadConfig(options: LoadConfigOptions = {}): EmpoConfig {
  const cwd = options.cwd ?? process.cwd();
  let file = options.file ? resolve(cwd, options.file) : undefined;
  if (!file) file = defaultConfigFiles.map((f) => resolve(cwd, f)).find((f) => existsSync(f));
  const raw = file ? readConfigFile(file) : {};
  for (const text of options.overrides ?? []) {
    const [path, value] = parseOverride(text);
    applyOverride(raw, path, value);
  }
  const source = [file, options.overrides?.length ? '--set' : undefined].filter(Boolean).join(' + ') || 'config';
  return parseConfig(raw, source);
}

/** Field-by-field documentation generated from the schema (used by `empo config --help` and the README). */
export function describeConfig(): { key: string; type: string; default: unknown; doc: string }[] {
  const defaults = parseConfig({}) as unknown as Record<string, unknown>;
  const rows: { key: string; type: string; default: unknown; doc: string }[] = [];
  const walk = (shape: Record<string, z.ZodType>, prefix: string, defs: Record<string, unknown>) => {
    for (const [name, field] of Object.entries(shape)) {
      const inner = unwrap(field);
      if (inner instanceof z.ZodObject) {
        walk(inner.shape as Record<string, z.ZodType>, `${prefix}${name}.`, defs[name] as Record<string, unknown>);
      } else {
        rows.push({ key: prefix + name, type: typeName(inner), default: defs[name], doc: field.description ?? '' });
      }
    }
  };
  walk(configSchema.shape as Record<string, z.ZodType>, '', defaults);
  return rows;
}

function unwrap(t: z.ZodType): z.ZodType {
  let cur: z.ZodType = t;
  for (;;) {
    const def = (cur as unknown as { def: { type: string; innerType?: z.ZodType } }).def;
    if ((def.type === 'default' || def.type === 'prefault' || def.type === 'optional') && def.innerType) cur = def.innerType;
    else return cur;
  }
}

function typeName(t: z.ZodType): string {
  const def = (t as unknown as { def: { type: string; entries?: Record<string, string>; innerType?: z.ZodType } }).def;
  if (def.type === 'enum') return Object.keys(def.entries ?? {}).join(' | ');
  if (def.type === 'nullable' && def.innerType) return `${typeName(def.innerType)} | null`;
  return def.type;
}
