/**
 * The webgpu backend (TensorFlow.js's WebGPU backend on Dawn) computes what wasm computes, on the bundled
 * tiny model: logits, log-probs, greedy generation, the policy-loss gradient and one full EMPO update
 * (policyUpdate with AdamW, the trainer's code path). On a machine without a GPU this runs on Mesa's software
 * adapter (llvmpipe through Dawn's OpenGL ES backend), which `.ci/run` installs.
 *
 * Tolerances (float32 on both sides; the GPU sums in another order). Measured on Mesa llvmpipe, the
 * differences are 100x or more below these bounds (logits 9e-6, gradients 5e-6 relative, weights 4e-5):
 * - logits and teacher-forced log-probs: max |diff| < 1e-3 (logits reach about +-20); greedy tokens identical
 *   (also sampled tokens with the same seed, on a random GQA model with untied embeddings);
 * - policy-loss gradients: per weight matrix, max |diff| < 1e-3 x the largest |gradient| of that matrix;
 * - two policyUpdate steps (GRPO loss, KL to a reference with beta 0.04, clipping, AdamW with weight decay,
 *   lr 1e-4): loss, gradient norm and KL within 1e-3 relative, mean ratio within 1e-4; the weight change
 *   differs by < 1e-2 of its own L2 norm, no weight by more than 4.4 x lr (Adam moves a weight by at most
 *   about lr per step, whatever the gradient) and fewer than 0.1% of the weights by more than lr / 100.
 *
 * Without an adapter the tests skip, except in CI (CI or EMPO_REQUIRE_WEBGPU=1 set), where they fail.
 */
import * as tf from '@tensorflow/tfjs';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  backendChoice, parseConfig, probeAdapter, readParquetRows, selectBackend, labeledQueriesSpec,
  type ClusterRow, type RolloutRow, type TrainerConfig,
} from '@empo/core';
import { CharTokenizer, Policy, tinyConfig } from '@empo/policy';
import { AdamW, buildExamples, policyLoss, lossNormalizer, policyUpdate } from '@empo/trainer';

const ROOT = join(import.meta.dirname, '..');
const MODEL = join(ROOT, 'data/models/tiny-arith');
const required = Boolean(process.env.CI) || process.env.EMPO_REQUIRE_WEBGPU === '1';

const gpu = await probeAdapter('gpu');
const software = await probeAdapter('software');
const available = gpu.ok || software.ok;
const why = [gpu, software].map((p) => (p.ok ? '' : p.reason)).filter(Boolean).join('; ');
if (!available && !required) console.warn(`[webgpu.test] skipped: no WebGPU adapter (${why})`);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return Number.isNaN(m) ? Infinity : m;
}
const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x as number]);

const questions = readParquetRows(join(ROOT, 'data/tasks/arith/eval.parquet'), labeledQueriesSpec).slice(0, 6).map((r) => `${r.question}\n`);

interface ForwardOut { logits: number[]; lp: number[][]; greedy: number[][] }

async function forward(backend: 'wasm' | 'webgpu'): Promise<ForwardOut> {
  await selectBackend(backend, true);
  const p = await Policy.load(MODEL);
  try {
    const prompts = questions.map((q) => p.encodePrompt(q));
    const greedy = p.generate(prompts, { maxNewTokens: 24, temperature: 0, stopAtEos: false }).tokens;
    return {
      logits: tf.tidy(() => flat(p.logits(prompts).arraySync())),
      lp: p.completionLogprobs(prompts, greedy),
      greedy,
    };
  } finally {
    p.dispose();
  }
}

/** Rollouts of the tiny model with rewards that vary within each group (so advantages are non-zero). */
function rolloutsFor(p: Policy): { rollouts: RolloutRow[]; clusters: ClusterRow[] } {
  const rollouts: RolloutRow[] = [];
  const clusters: ClusterRow[] = [];
  questions.slice(0, 3).forEach((question, q) => {
    const prompt = p.encodePrompt(question);
    const out = p.generate([prompt, prompt, prompt, prompt], { maxNewTokens: 16, temperature: 1, topP: 1, seed: 11 + q });
    out.tokens.forEach((completion, i) => {
      rollouts.push({ step: 1, question_id: `q${q}`, question, sample_index: i, prompt: question, completion: '', prompt_ids: prompt,
        completion_ids: completion, logprobs: out.logprobs[i]!, finished: out.finished[i]! });
      const reward = [1, 0.5, 0.25, 0][(i + q) % 4]!;
      clusters.push({ step: 1, question_id: `q${q}`, sample_index: i, answer: String(reward), cluster_id: i, cluster_size: 1, reward, entropy: 1, keep: true });
    });
  });
  return { rollouts, clusters };
}

interface StepOut {
  /** Gradient of the policy loss (first step) per weight. */
  grads: Map<string, Float32Array>;
  /** Stats of two consecutive policyUpdate calls (the second sees a moved policy: non-zero loss and KL). */
  stats: ReturnType<typeof policyUpdate>[];
  before: Map<string, Float32Array>;
  after: Map<string, Float32Array>;
}

async function trainingSteps(backend: 'wasm' | 'webgpu', data: { rollouts: RolloutRow[]; clusters: ClusterRow[] }, config: TrainerConfig): Promise<StepOut> {
  await selectBackend(backend, true);
  const policy = await Policy.load(MODEL);
  const reference = await Policy.load(MODEL);
  try {
    const examples = buildExamples(data.rollouts, data.clusters, config);
    // The policy-loss gradient on its own, on the same batch (and tensor shapes) as the update.
    const named = policy.namedVariables();
    const ids = examples.map((e) => e.ids);
    const width = Math.max(...ids.map((s) => s.length)) - 1;
    const mask = tf.tensor2d(examples.map((e) => Array.from({ length: width }, (_, t) => (t >= e.promptLength - 1 && t < e.ids.length - 1 ? 1 : 0))));
    const old = tf.tensor2d(examples.map((e) => Array.from({ length: width }, (_, t) => e.oldLogprobs[t - (e.promptLength - 1)] ?? 0)));
    const adv = tf.tensor1d(examples.map((e) => e.advantage));
    const completionTokens = examples.reduce((n, e) => n + e.oldLogprobs.length, 0);
    const { value, grads } = tf.variableGrads(() => policyLoss({
      logprobs: policy.sequenceLogprobs(ids), oldLogprobs: old, mask, advantages: adv, epsilonLow: config.epsilon,
      epsilonHigh: config.epsilon, beta: 0, lossType: config.loss_type, normalizer: lossNormalizer(config.loss_type, examples.length, completionTokens, 16),
    }), [...named.values()]);
    const byVar = new Map([...named].map(([name, v]) => [name, grads[v.name]!.dataSync() as Float32Array]));
    tf.dispose([value, mask, old, adv, ...Object.values(grads)]);
    // The trainer's update: KL to the reference, clipping, AdamW with weight decay; two steps on the same batch.
    const before = new Map([...(await policy.hostWeights())].map(([k, w]) => [k, w.data]));
    const optimizer = new AdamW(named, { learningRate: config.learning_rate, beta1: config.adam_beta1, beta2: config.adam_beta2, epsilon: config.adam_epsilon, weightDecay: config.weight_decay });
    const stats = [0, 1].map(() => policyUpdate(policy, optimizer, examples, config, { reference, maxCompletionLength: 16 }));
    const after = new Map([...(await policy.hostWeights())].map(([k, w]) => [k, w.data]));
    optimizer.dispose();
    return { grads: byVar, stats, before, after };
  } finally {
    policy.dispose();
    reference.dispose();
  }
}

describe.skipIf(!available && !required)('webgpu backend', () => {
  beforeAll(() => {
    if (!available) throw new Error(`no WebGPU adapter in CI: ${why}. .ci/run installs Mesa (libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri)`);
  });

  test('selects a WebGPU adapter and reports it', async () => {
    expect(await selectBackend('webgpu', true)).toBe('webgpu');
    expect(tf.getBackend()).toBe('webgpu');
    const adapter = backendChoice()!.adapter!;
    expect(adapter.kind).toBe(gpu.ok ? 'gpu' : 'software');
    expect(adapter.device || adapter.description).not.toBe('');
    const x = tf.tensor2d([[1, 2], [3, 4]]);
    expect(Array.from(tf.matMul(x, x).dataSync())).toEqual([7, 10, 15, 22]); // a synchronous read works in Node
    x.dispose();
  });

  test('logits, log-probs and greedy generation of the tiny model equal wasm', async () => {
    const wasm = await forward('wasm');
    const webgpu = await forward('webgpu');
    expect(webgpu.logits.length).toBe(wasm.logits.length);
    expect(maxAbsDiff(webgpu.logits, wasm.logits)).toBeLessThan(1e-3);
    expect(Math.max(...wasm.logits.map(Math.abs))).toBeGreaterThan(5); // not a trivially small scale
    expect(webgpu.greedy).toEqual(wasm.greedy);
    expect(maxAbsDiff(flat(webgpu.lp), flat(wasm.lp))).toBeLessThan(1e-3);
  });

  test('a random GQA model (4 heads, 2 KV heads, untied embeddings): logits, greedy and sampled generation equal wasm', async () => {
    const run = async (backend: 'wasm' | 'webgpu') => {
      await selectBackend(backend, true);
      const tokenizer = CharTokenizer.fromChars('abcdefghijklmnopqrstuvwxyz0123456789 +-*/=?');
      const config = tinyConfig({ vocabSize: tokenizer.vocabSize, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 128,
        tieWordEmbeddings: false, bosId: tokenizer.bosId, eosId: tokenizer.eosId, padId: tokenizer.padId, maxPositions: 64 });
      const p = Policy.init(config, tokenizer, 5);
      try {
        const prompts = ['what is 12+30?', 'x=7 y=8', 'abc'].map((t) => p.encodePrompt(t));
        return {
          logits: tf.tidy(() => flat(p.logits(prompts).arraySync())),
          greedy: p.generate(prompts, { maxNewTokens: 12, temperature: 0, stopAtEos: false }),
          sampled: p.generate(prompts, { maxNewTokens: 12, temperature: 1, topP: 0.9, seed: 3, stopAtEos: false }),
        };
      } finally {
        p.dispose();
      }
    };
    const wasm = await run('wasm');
    const webgpu = await run('webgpu');
    expect(maxAbsDiff(webgpu.logits, wasm.logits)).toBeLessThan(1e-3);
    expect(webgpu.greedy.tokens).toEqual(wasm.greedy.tokens);
    expect(webgpu.sampled.tokens).toEqual(wasm.sampled.tokens);
    expect(maxAbsDiff(flat(webgpu.sampled.logprobs), flat(wasm.sampled.logprobs))).toBeLessThan(1e-3);
  });

  test('two training steps (policy loss, gradients, KL, AdamW) equal wasm', async () => {
    await selectBackend('wasm', true);
    const sampler = await Policy.load(MODEL);
    const data = rolloutsFor(sampler);
    sampler.dispose();
    const config = parseConfig({ trainer: { learning_rate: 1e-4, weight_decay: 0.01, beta: 0.04, micro_batch_size: 12, num_iterations: 1 } }).trainer;
    const wasm = await trainingSteps('wasm', data, config);
    const webgpu = await trainingSteps('webgpu', data, config);

    expect(wasm.grads.size).toBeGreaterThan(10);
    let gradDiff = 0;
    for (const [name, g] of wasm.grads) {
      const scale = Math.max(...Array.from(g, Math.abs));
      expect(scale, name).toBeGreaterThan(0);
      gradDiff = Math.max(gradDiff, maxAbsDiff(webgpu.grads.get(name)!, g) / scale);
    }
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
    const [w1, w2] = wasm.stats as [StepOut['stats'][0], StepOut['stats'][0]];
    const [g1, g2] = webgpu.stats as [StepOut['stats'][0], StepOut['stats'][0]];
    // Deltas of the weights over the two steps, compared as vectors and entry by entry.
    const lr = config.learning_rate;
    let dd = 0, d2 = 0, worst = 0, far = 0, entries = 0;
    for (const [name, w] of wasm.after) {
      const v = webgpu.after.get(name)!;
      const b = wasm.before.get(name)!;
      for (let i = 0; i < w.length; i++) {
        const diff = Math.abs(v[i]! - w[i]!);
        dd += diff * diff;
        d2 += (w[i]! - b[i]!) ** 2;
        worst = Math.max(worst, diff);
        if (diff > 1e-2 * lr) far++;
        entries++;
      }
    }
    expect(gradDiff).toBeLessThan(1e-3);
    expect(Math.abs(w1.loss)).toBeLessThan(1e-6); // ratio 1 and group-normalized advantages: zero on both
    expect(Math.abs(g1.loss)).toBeLessThan(1e-6);
    expect(Math.abs(w2.loss)).toBeGreaterThan(1e-5); // the second step sees a moved policy
    expect(rel(g2.loss, w2.loss)).toBeLessThan(1e-3);
    expect(rel(g1.gradNorm, w1.gradNorm)).toBeLessThan(1e-3);
    expect(rel(g2.gradNorm, w2.gradNorm)).toBeLessThan(1e-3);
    expect(w2.kl).toBeGreaterThan(1e-3);
    expect(rel(g2.kl, w2.kl)).toBeLessThan(1e-3);
    expect(Math.abs(g2.ratioMean - w2.ratioMean)).toBeLessThan(1e-4);
    expect(Math.sqrt(d2 / entries)).toBeGreaterThan(0.5 * lr); // the weights really moved
    expect(Math.sqrt(dd / d2)).toBeLessThan(1e-2);
    expect(worst).toBeLessThan(4.4 * lr);
    expect(far / entries).toBeLessThan(1e-3);
  });

  test('`empo logprobs --backend webgpu` prints the wasm log-probs and exits cleanly, every time', async () => {
    await selectBackend('wasm', true);
    const p = await Policy.load(MODEL);
    const prompt = p.encodePrompt(questions[0]!);
    const completion = p.tokenizer.encode('a=12 b=30 a+b=42 \\boxed{42}');
    const expected = p.completionLogprobs([prompt], [completion])[0]!;
    p.dispose();
    const cli = join(ROOT, 'packages/cli/bin/empo.mjs');
    const args = [cli, 'logprobs', '--model', MODEL, '--prompt', questions[0]!, '--completion', 'a=12 b=30 a+b=42 \\boxed{42}', '--json', '--backend', 'webgpu'];
    // Two at a time, both cores busy: letting Node finalize Dawn's objects at exit crashed about one such run in
    // eight after its output (SIGSEGV or SIGABRT); twelve runs show that with a probability of about 0.8.
    const once = () => new Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, args, { cwd: ROOT });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('error', reject);
      child.on('close', (status, signal) => (clearTimeout(timer), resolve({ status, signal, stdout, stderr })));
    });
    for (let pair = 0; pair < 6; pair++) {
      for (const run of await Promise.all([once(), once()])) {
        expect(run.status, `signal ${run.signal}; stderr: ${run.stderr}`).toBe(0);
        expect(run.stderr).toMatch(/tensor backend: webgpu on /);
        const out = JSON.parse(run.stdout) as { completion_ids: number[]; logprobs: number[] };
        expect(out.completion_ids).toEqual(completion);
        expect(maxAbsDiff(out.logprobs, expected)).toBeLessThan(1e-3);
      }
    }
  }, 240_000);
});

test('a bad --backend is an error that lists the allowed names', () => {
  const cli = join(ROOT, 'packages/cli/bin/empo.mjs');
  const run = spawnSync(process.execPath, [cli, 'logprobs', '--model', MODEL, '--prompt', '1', '--completion', '2', '--backend', 'gpu'], { cwd: ROOT, encoding: 'utf8' });
  expect(run.status).toBe(2);
  expect(run.stderr).toContain("--backend: unknown backend 'gpu' (allowed: auto, wasm, cpu, webgpu, tensorflow)");
});
