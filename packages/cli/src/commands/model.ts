/**
 * Model tools on a Hugging Face model folder: `empo logprobs` (teacher-forced log-probabilities of a
 * completion) and `empo generate` (sample or greedily decode a completion). Both print machine-readable
 * output on stdout only; logs go to stderr.
 */
import { existsSync, statSync } from 'node:fs';
import { EmpoError, parseBackendName, selectBackend } from '@empo/core';
import { parse } from '../args.ts';
import type { Command } from './types.ts';

const common = `  --model DIR          Hugging Face model folder (config.json, model.safetensors, tokenizer.json, ...)
  --prompt TEXT        the prompt (raw text: BOS first when the tokenizer adds one, no chat template)
  --chat               format the prompt as a user message with the tokenizer's chat template
  --system TEXT        with --chat: a system message before it
  --backend NAME       wasm (default), cpu, webgpu, tensorflow, auto ('empo backends' lists them)
  -h, --help           this help`;

const logprobsHelp = `Usage: empo logprobs --model DIR --prompt TEXT --completion TEXT [--json] [options]

Teacher-forced log-probabilities of the completion's tokens: logprobs[i] = log p(completion_ids[i] |
prompt, completion_ids[:i]). The prompt and the completion are tokenized separately (the completion
without BOS), as the sampler and trainer do.

${common}
  --completion TEXT    the completion to score
  --json               print {"prompt_ids": [...], "completion_ids": [...], "logprobs": [...]} (one line)
`;

const generateHelp = `Usage: empo generate --model DIR --prompt TEXT [options]

Prints the completion text (special tokens removed) on stdout, nothing else. Generation stops at an
EOS token (config.json, tokenizer and generation_config.json eos ids) or after --max-tokens.

${common}
  --max-tokens N       new tokens at most (default 128)
  --temperature X      0 = greedy (default); otherwise sample from softmax(logits / X)
  --top-p P            nucleus sampling mass in (0, 1] (default 1)
  --seed N             sampling seed (default 0)
  --json               print {"prompt_ids", "completion_ids", "logprobs", "finished", "text"} instead
`;

const modelOptions = {
  model: { type: 'string' },
  prompt: { type: 'string' },
  chat: { type: 'boolean' },
  system: { type: 'string' },
  backend: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function number(flag: string, text: string | undefined, fallback: number, ok: (x: number) => boolean, what: string): number {
  if (text === undefined) return fallback;
  const x = Number(text);
  if (text.trim() === '' || !Number.isFinite(x) || !ok(x)) throw new EmpoError(`${flag} must be ${what}, got '${text}'`);
  return x;
}

/** Load the model folder (after checking the flags that name it). */
async function loadModel(command: string, values: { model?: string; prompt?: string; backend?: string }) {
  if (!values.model) throw new EmpoError(`--model is required; see 'empo ${command} --help'`);
  if (values.prompt === undefined) throw new EmpoError(`--prompt is required; see 'empo ${command} --help'`);
  if (!existsSync(values.model) || !statSync(values.model).isDirectory()) throw new EmpoError(`--model: ${values.model} is not a folder`);
  const backend = parseBackendName('--backend', values.backend ?? 'wasm');
  const { Policy } = await import('@empo/policy');
  await selectBackend(backend);
  return Policy.load(values.model);
}

type Loaded = Awaited<ReturnType<typeof loadModel>>;

function promptIds(policy: Loaded, values: { prompt?: string; chat?: boolean; system?: string }): number[] {
  if (values.system !== undefined && !values.chat) throw new EmpoError('--system needs --chat');
  const chat = values.chat ? (values.system !== undefined ? { system: values.system } : true) : false;
  const ids = policy.encodePrompt(values.prompt!, { chat });
  if (ids.length === 0) {
    throw new EmpoError('--prompt is empty and the tokenizer adds no BOS token: there is nothing to condition the first token on');
  }
  return ids;
}

export const logprobs: Command = {
  summary: 'teacher-forced log-probabilities of a completion under a model folder',
  async run(argv) {
    const { values } = parse('logprobs', argv, { ...modelOptions, completion: { type: 'string' } });
    if (values.help) return void process.stdout.write(logprobsHelp);
    if (values.completion === undefined) throw new EmpoError("--completion is required; see 'empo logprobs --help'");
    const policy = await loadModel('logprobs', values);
    try {
      const prompt = promptIds(policy, values);
      const completion = policy.tokenizer.encode(values.completion);
      const lp = policy.completionLogprobs([prompt], [completion])[0]!;
      if (values.json) {
        process.stdout.write(JSON.stringify({ prompt_ids: prompt, completion_ids: completion, logprobs: lp }) + '\n');
        return;
      }
      const lines = completion.map((id, i) => `${String(i).padStart(4)}  ${String(id).padStart(7)}  ${lp[i]!.toFixed(4).padStart(9)}  ${JSON.stringify(policy.tokenizer.idToToken(id) ?? '')}`);
      const sum = lp.reduce((a, b) => a + b, 0);
      process.stdout.write(
        [`prompt: ${prompt.length} tokens; completion: ${completion.length} tokens`, '   i       id    logprob  token', ...lines, `sum ${sum.toFixed(4)}  mean ${(completion.length ? sum / completion.length : 0).toFixed(4)}`].join('\n') + '\n',
      );
    } finally {
      policy.dispose();
    }
  },
};

export const generate: Command = {
  summary: 'generate a completion of a prompt with a model folder (greedy by default)',
  async run(argv) {
    const { values } = parse('generate', argv, {
      ...modelOptions,
      'max-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
    });
    if (values.help) return void process.stdout.write(generateHelp);
    const maxNewTokens = number('--max-tokens', values['max-tokens'], 128, (x) => Number.isInteger(x) && x >= 0, 'a non-negative integer');
    const temperature = number('--temperature', values.temperature, 0, (x) => x >= 0, 'a number >= 0');
    const topP = number('--top-p', values['top-p'], 1, (x) => x > 0 && x <= 1, 'in (0, 1]');
    const seed = number('--seed', values.seed, 0, (x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32, 'an integer in [0, 2^32)');
    const policy = await loadModel('generate', values);
    try {
      const prompt = promptIds(policy, values);
      const out = policy.generate([prompt], { maxNewTokens, temperature, topP, seed });
      const tokens = out.tokens[0]!;
      const text = policy.tokenizer.decode(tokens);
      if (values.json) {
        process.stdout.write(JSON.stringify({ prompt_ids: prompt, completion_ids: tokens, logprobs: out.logprobs[0], finished: out.finished[0], text }) + '\n');
        return;
      }
      // Only the completion; a final newline for terminals (pipes get the exact text).
      process.stdout.write(text + (process.stdout.isTTY && !text.endsWith('\n') ? '\n' : ''));
    } finally {
      policy.dispose();
    }
  },
};
