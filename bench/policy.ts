/**
 * Policy throughput on the tiny default model (tinyConfig: d=128, 4 layers, 4 heads, MLP 512, tied
 * embeddings; a character tokenizer over the arithmetic alphabet): sampling tokens/s with the KV cache
 * (and without, for comparison), teacher-forced log-prob tokens/s (inference), and the gradient of the
 * log-probs (training) in tokens/s. Random weights, EOS ignored, so every row generates the same count.
 *   npx tsx bench/policy.ts [--json] [--backend wasm|cpu|webgpu|...] [--model DIR] [--repeats N] [--vocab N]
 *     [--hidden N --layers N --heads N --kv-heads N --intermediate N] [--new-tokens N] [--only REGEX]
 * --model DIR uses a saved model folder (e.g. data/models/tiny-arith) instead of random weights;
 * --vocab N pads the vocabulary to N (e.g. 151936, Qwen's) to show the cost of a large vocabulary;
 * --hidden ... --intermediate size the random model (default: tinyConfig's); --new-tokens N sets the tokens each
 * sampled row generates (default 48; fewer for large models); --only runs the rows whose name
 * matches REGEX (e.g. 'policyUpdate|batch 16').
 */
import { cpus, totalmem } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { parseConfig } from '@empo/core';
import { CharTokenizer, peakMemoryMB, Policy, tinyConfig, useBackend, type BackendName } from '@empo/policy';
import { AdamW, policyUpdate } from '@empo/trainer';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const json = args.includes('--json');
const backend = (flag('--backend') ?? 'wasm') as BackendName;
const repeats = Number(flag('--repeats') ?? 3);
const modelDir = flag('--model');
const vocab = flag('--vocab') ? Number(flag('--vocab')) : undefined;
const size = (name: string) => (flag(name) === undefined ? undefined : Number(flag(name)));
const only = flag('--only') === undefined ? undefined : new RegExp(flag('--only')!);

await useBackend(backend);
const tok = CharTokenizer.fromChars('0123456789 +-*/=().,:?abcdefghijklmnopqrstuvwxyz\\{}\n');
const initStart = performance.now();
const policy = modelDir
  ? await Policy.load(modelDir)
  : Policy.init(tinyConfig({
    vocabSize: vocab ?? tok.vocabSize, bosId: tok.bosId, eosId: tok.eosId, padId: tok.padId, hiddenSize: size('--hidden'),
    numLayers: size('--layers'), numHeads: size('--heads'), numKvHeads: size('--kv-heads') ?? size('--heads'), intermediateSize: size('--intermediate'),
  }), tok, 1);

process.stderr.write(`model ready in ${((performance.now() - initStart) / 1000).toFixed(1)} s (${policy.numParameters().toLocaleString('en-US')} parameters)\n`);

/** Median seconds of `repeats` runs after one warm-up run. */
function time(fn: () => void): number {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    fn();
    ts.push((performance.now() - t0) / 1000);
  }
  return ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)]!;
}

// Prompts like the bundled task's: ~35 tokens each.
const questions = Array.from({ length: 128 }, (_, i) => `q${i}: a=${(i * 37) % 97} b=${(i * 13) % 89}*${(i % 7) + 2} a+b=?`);
const promptIds = questions.map((q) => policy.encodePrompt(q));
const meanPrompt = promptIds.reduce((a, p) => a + p.length, 0) / promptIds.length;
const NEW = size('--new-tokens') ?? 48;
if (!Number.isInteger(NEW) || NEW < 1) throw new Error(`bench/policy.ts: --new-tokens must be a positive integer, got ${flag('--new-tokens')}`);

interface Row {
  name: string;
  batch: number;
  tokens: number;
  seconds: number;
  tokens_per_s: number;
  note: string;
}
const rows: Row[] = [];
const add = (name: string, batch: number, tokens: number, seconds: () => number, note: string) => {
  if (only && !only.test(name)) return;
  const s = seconds();
  rows.push({ name, batch, tokens, seconds: s, tokens_per_s: tokens / s, note });
  // Each row as it finishes, so that a run cut short by a time limit still reports what it measured.
  process.stderr.write(`${name}: ${s.toFixed(3)} s, ${Math.round(tokens / s)} tokens/s\n`);
};

// Sampling with the KV cache: the sampler's shape (16 questions x 8 samples), 128 distinct prompts, and batch 1.
const sample = (prompts: number[][], maxNewTokens = NEW) =>
  policy.generate(prompts, { maxNewTokens, temperature: 1, topP: 1, seed: 7, stopAtEos: false });
const grouped = promptIds.slice(0, 16).flatMap((p) => Array.from({ length: 8 }, () => p));
add('generate (KV cache), 16 prompts x 8 samples', 128, 128 * NEW, () => time(() => sample(grouped)), `${NEW} new tokens per row, prompts ~${meanPrompt.toFixed(0)} tokens`);
add('generate (KV cache), 128 distinct prompts', 128, 128 * NEW, () => time(() => sample(promptIds)), `${NEW} new tokens per row`);
add('generate (KV cache), batch 16', 16, 16 * NEW, () => time(() => sample(promptIds.slice(0, 16))), `${NEW} new tokens per row`);
add('generate (KV cache), batch 1', 1, NEW, () => time(() => sample(promptIds.slice(0, 1))), `${NEW} new tokens`);
const U = 16;
add('generate without cache (reference), batch 16', 16, 16 * U, () => time(() => void policy.generateUncached(promptIds.slice(0, 16), { maxNewTokens: U, temperature: 1, seed: 7, stopAtEos: false })), `${U} new tokens per row: recomputes the sequence each step`);

// Teacher-forced log-probs (what the trainer computes for the old policy): prompt + 48 completion tokens.
const vocabIds = Math.min(tok.vocabSize, policy.config.vocab_size); // ids valid for --model's vocabulary too
const completions = promptIds.map((_, i) => Array.from({ length: NEW }, (_, t) => 4 + ((i * 7 + t * 3) % (vocabIds - 4))));
const seqTokens = (n: number) => promptIds.slice(0, n).reduce((a, p) => a + p.length + NEW, 0);
add('completionLogprobs (inference), 128 sequences', 128, seqTokens(128), () => time(() => void policy.completionLogprobs(promptIds, completions)), 'tokens = prompt + completion tokens processed');
// The differentiable path: forward + backward of sum(sequenceLogprobs), the trainer's micro-batch.
const seqs = promptIds.slice(0, 32).map((p, i) => [...p, ...completions[i]!]);
add('gradient of sequenceLogprobs, 32 sequences', 32, seqTokens(32), () => time(() => {
  const { value, grads } = tf.variableGrads(() => tf.sum(policy.sequenceLogprobs(seqs)) as tf.Scalar, policy.variables());
  tf.dispose([value, ...Object.values(grads)]);
}), 'forward + backward, tokens = sequence tokens');
// One trainer update on those 32 sequences: the trainer's policyUpdate (GRPO loss, backward, clipping, AdamW).
if (!only || only.test('policyUpdate')) {
  const trainer = parseConfig({}).trainer;
  const optimizer = new AdamW(policy.namedVariables(), { learningRate: 1e-6, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
  const examples = seqs.map((ids, i) => ({ ids, promptLength: promptIds[i]!.length, oldLogprobs: Array.from({ length: NEW }, () => -1), advantage: i % 2 ? 1 : -1 }));
  add('policyUpdate (GRPO loss, backward, AdamW), 32 sequences', 32, seqTokens(32),
    () => time(() => void policyUpdate(policy, optimizer, examples, trainer, { maxCompletionLength: NEW })), 'one optimizer step of the trainer, tokens = sequence tokens');
  optimizer.dispose();
}

const result = {
  machine: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${process.platform}`,
  backend: tf.getBackend(),
  model: modelDir ?? `random tinyConfig (d=${policy.config.hidden_size}, ${policy.config.num_hidden_layers} layers, ${policy.config.num_attention_heads} heads, ${policy.config.num_key_value_heads} KV heads, MLP ${policy.config.intermediate_size}, vocab ${policy.config.vocab_size})`,
  parameters: policy.numParameters(),
  command: `npx tsx bench/policy.ts ${args.join(' ')}`.trim(),
  repeats,
  peak_rss_mb: Math.round(peakMemoryMB()),
  rows,
};
policy.dispose();

if (json) {
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
} else {
  const lines = [
    `machine: ${result.machine}`,
    `backend: ${result.backend}; model: ${result.model}; ${result.parameters.toLocaleString('en-US')} parameters`,
    `command: ${result.command} (median of ${repeats} runs after a warm-up); peak RSS ${result.peak_rss_mb} MB`,
    '',
    '| measurement | batch | tokens | seconds | tokens/s | note |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
    ...rows.map((r) => `| ${r.name} | ${r.batch} | ${r.tokens} | ${r.seconds.toFixed(3)} | ${Math.round(r.tokens_per_s).toLocaleString('en-US')} | ${r.note} |`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
