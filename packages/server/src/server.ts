/**
 * An OpenAI-compatible HTTP server over a loaded Policy (`empo serve`):
 *
 *   GET  /v1/models
 *   POST /v1/completions        prompt (string, list of strings, token ids, list of token-id lists),
 *                               max_tokens, temperature, top_p, n, stop, seed, logprobs (0-5)
 *   POST /v1/chat/completions   messages (rendered with the tokenizer's chat template), max_tokens /
 *                               max_completion_tokens, temperature, top_p, n, stop, seed, logprobs, top_logprobs
 *
 * Bad requests get OpenAI-style errors ({"error": {"message", "type", "param", "code"}}, status 400). The
 * request body is bounded (413 past it), so are n, max_tokens and the number of prompts; requests are run
 * one at a time (generation holds the JS thread) and at most `maxQueue` wait (429 past that).
 * Log-probs are the model's own (temperature 1, before top-p), as vLLM returns them by default.
 * `return_tokens_as_token_ids: true` (a vLLM extension) makes logprobs tokens read "token_id:N".
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as tf from '@tensorflow/tfjs';
import { log } from '@empo/core';
import { applyChatTemplate, hasChatTemplate, type ChatMessage, type Policy } from '@empo/policy';

export interface ServerOptions {
  /** Name listed at /v1/models and expected in requests (a request naming another model gets 404). */
  modelName: string;
  /** Largest request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Requests waiting for the model at most (default 32); more get 429. */
  maxQueue?: number;
  /** Largest max_tokens (default: the model's max_position_embeddings). */
  maxTokens?: number;
  /** Largest n (default 64). */
  maxN?: number;
  /** Largest number of sequences (prompts x n) in one request (default 256). */
  maxSequences?: number;
}

class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null, readonly code: string | null = null,
    readonly type = status === 404 && code === 'model_not_found' ? 'invalid_request_error' : status >= 500 ? 'server_error' : 'invalid_request_error') {
    super(message);
  }
}

const bad = (message: string, param: string | null = null, code: string | null = null) => new ApiError(400, message, param, code);

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, e: ApiError): void {
  send(res, e.status, { error: { message: e.message, type: e.type, param: e.param, code: e.code } });
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new ApiError(413, `request body of ${declared} bytes exceeds the limit of ${limit} bytes`, null, 'request_too_large'));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new ApiError(413, `request body exceeds the limit of ${limit} bytes`, null, 'request_too_large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// ---- request validation -------------------------------------------------------------------------------

type Body = Record<string, unknown>;

function num(body: Body, key: string, fallback: number, ok: (x: number) => boolean, what: string): number {
  const v = body[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw bad(`'${key}' must be ${what}, got ${JSON.stringify(v)}`, key);
  return v;
}

function stopList(body: Body): string[] {
  const v = body.stop;
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.some((s) => typeof s !== 'string' || s.length === 0) || list.length > 4) {
    throw bad("'stop' must be a non-empty string or a list of at most 4 non-empty strings", 'stop');
  }
  return list as string[];
}

interface Sampling {
  maxTokens: number;
  temperature: number;
  topP: number;
  n: number;
  seed: number | null;
  stop: string[];
}

// ---- generation ---------------------------------------------------------------------------------------

interface Generated {
  ids: number[];
  text: string;
  finishReason: 'stop' | 'length';
  /** Per token: its log-prob and the top alternatives (when asked for). */
  logprobs: { id: number; logprob: number; top: { id: number; logprob: number }[] }[] | null;
}

/** Cut at the first stop string: the text before it, and the tokens whose decoded text lies within that. */
function applyStop(policy: Policy, ids: number[], text: string, stop: string[]): { ids: number[]; text: string; stopped: boolean } {
  let cut = -1;
  for (const s of stop) {
    const at = text.indexOf(s);
    if (at >= 0 && (cut < 0 || at < cut)) cut = at;
  }
  if (cut < 0) return { ids, text, stopped: false };
  let keep = 0;
  while (keep < ids.length && policy.tokenizer.decode(ids.slice(0, keep + 1)).length <= cut) keep++;
  return { ids: ids.slice(0, keep), text: text.slice(0, cut), stopped: true };
}

/** Raw-model log-probs of each completion token and the `top` best alternatives at each position. */
function tokenLogprobs(policy: Policy, prompt: number[], completion: number[], top: number): Generated['logprobs'] {
  if (completion.length === 0) return [];
  const seq = [...prompt, ...completion];
  const lp = tf.tidy(() => {
    const logits = policy.logits([seq]).squeeze([0]) as tf.Tensor2D;
    return tf.logSoftmax(logits.slice([prompt.length - 1, 0], [completion.length, -1]));
  });
  try {
    const data = lp.arraySync() as number[][];
    return completion.map((id, i) => {
      const row = data[i]!;
      let best: { id: number; logprob: number }[] = [];
      if (top > 0) {
        best = row.map((logprob, j) => ({ id: j, logprob })).sort((a, b) => b.logprob - a.logprob).slice(0, top);
      }
      return { id, logprob: row[id]!, top: best };
    });
  } finally {
    lp.dispose();
  }
}

function run(policy: Policy, prompts: number[][], s: Sampling, top: number | null): Generated[][] {
  const seqs = prompts.flatMap((p) => Array.from({ length: s.n }, () => p));
  const seed = s.seed ?? Math.floor(Math.random() * 2 ** 32);
  const out = policy.generate(seqs, { maxNewTokens: s.maxTokens, temperature: s.temperature, topP: s.topP, seed });
  return prompts.map((p, pi) => Array.from({ length: s.n }, (_, j) => {
    const i = pi * s.n + j;
    let ids = out.tokens[i]!;
    const finished = out.finished[i]!;
    // Drop the EOS token from what is returned (OpenAI servers do not show it).
    if (finished && ids.length > 0 && policy.stopIds.has(ids[ids.length - 1]!)) ids = ids.slice(0, -1);
    const full = policy.tokenizer.decode(ids);
    const cut = applyStop(policy, ids, full, s.stop);
    return {
      ids: cut.ids, text: cut.text, finishReason: finished || cut.stopped ? 'stop' : 'length',
      logprobs: top === null ? null : tokenLogprobs(policy, p, cut.ids, top),
    };
  }));
}

// ---- the server ---------------------------------------------------------------------------------------

export class PolicyServer {
  readonly server: Server;
  private readonly maxBodyBytes: number;
  private readonly maxQueue: number;
  private readonly maxTokens: number;
  private readonly maxN: number;
  private readonly maxSequences: number;
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;
  private counter = 0;

  constructor(readonly policy: Policy, readonly opts: ServerOptions) {
    this.maxBodyBytes = opts.maxBodyBytes ?? 1 << 20;
    this.maxQueue = opts.maxQueue ?? 32;
    this.maxTokens = opts.maxTokens ?? policy.config.max_position_embeddings;
    this.maxN = opts.maxN ?? 64;
    this.maxSequences = opts.maxSequences ?? 256;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        const e = error instanceof ApiError ? error : new ApiError(500, `internal error: ${(error as Error).message}`);
        if (e.status >= 500) log.warn(`serve: ${req.method} ${req.url}: ${(error as Error).stack ?? error}`);
        if (!res.headersSent) sendError(res, e);
        else res.end();
      });
    });
    this.server.requestTimeout = 0;
  }

  /** Listen on host:port (port 0: an ephemeral one); resolves to the bound address. */
  listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve(this.server.address() as AddressInfo));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections?.();
      this.server.close(() => resolve());
    });
  }

  /** Run `f` when the model is free; besides the one running, at most maxQueue requests wait (429 past that). */
  private exclusive<T>(f: () => T): Promise<T> {
    if (this.pending > this.maxQueue) {
      return Promise.reject(new ApiError(429, `the server is busy (${this.pending} requests in progress or queued); retry later`, null, 'rate_limit_exceeded', 'rate_limit_error'));
    }
    this.pending++;
    const result = this.queue.then(f).finally(() => {
      this.pending--;
    });
    this.queue = result.then(() => undefined, () => undefined);
    return result;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '');
    if (path === '/v1/models' || path === '/models') {
      if (req.method !== 'GET') throw new ApiError(405, `${req.method} is not allowed on ${path}; use GET`);
      return send(res, 200, { object: 'list', data: [{ id: this.opts.modelName, object: 'model', created: 0, owned_by: 'empo' }] });
    }
    if (path === '/health') return send(res, 200, { status: 'ok' });
    const chat = path === '/v1/chat/completions';
    if (!chat && path !== '/v1/completions') throw new ApiError(404, `unknown route ${req.method} ${path}`, null, 'not_found');
    if (req.method !== 'POST') throw new ApiError(405, `${req.method} is not allowed on ${path}; use POST`);
    const text = await readBody(req, this.maxBodyBytes);
    let body: Body;
    try {
      body = JSON.parse(text) as Body;
    } catch {
      throw bad('the request body is not valid JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('the request body must be a JSON object');
    if (body.model !== undefined && body.model !== this.opts.modelName) {
      throw new ApiError(404, `The model '${String(body.model)}' does not exist; this server serves '${this.opts.modelName}'`, 'model', 'model_not_found');
    }
    if (body.stream) throw bad("'stream' is not supported by this server", 'stream');
    if (body.echo) throw bad("'echo' is not supported by this server", 'echo');
    // Fields this server cannot honour are refused rather than silently ignored.
    const unsupported: [string, (v: unknown) => boolean][] = [
      ['suffix', (v) => v !== null && v !== ''],
      ['best_of', (v) => v !== null && v !== 1 && v !== body.n],
      ['logit_bias', (v) => v !== null && typeof v === 'object' && Object.keys(v as object).length > 0],
      ['presence_penalty', (v) => v !== null && v !== 0],
      ['frequency_penalty', (v) => v !== null && v !== 0],
      ['tools', (v) => Array.isArray(v) && v.length > 0],
    ];
    for (const [key, used] of unsupported) {
      if (body[key] !== undefined && used(body[key])) throw bad(`'${key}' is not supported by this server`, key);
    }
    const sampling: Sampling = {
      maxTokens: num(body, chat && body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens', chat ? Math.min(this.maxTokens, 512) : 16,
        (x) => Number.isInteger(x) && x >= 0 && x <= this.maxTokens, `an integer in [0, ${this.maxTokens}]`),
      temperature: num(body, 'temperature', 1, (x) => x >= 0 && x <= 2, 'a number in [0, 2]'),
      topP: num(body, 'top_p', 1, (x) => x > 0 && x <= 1, 'a number in (0, 1]'),
      n: num(body, 'n', 1, (x) => Number.isInteger(x) && x >= 1 && x <= this.maxN, `an integer in [1, ${this.maxN}]`),
      seed: body.seed === undefined || body.seed === null ? null : num(body, 'seed', 0, (x) => Number.isInteger(x), 'an integer') >>> 0,
      stop: stopList(body),
    };
    return chat ? this.chat(res, body, sampling) : this.completions(res, body, sampling);
  }

  private promptIds(prompt: unknown): { ids: number[][]; texts: string[] } {
    const vocab = this.policy.config.vocab_size;
    const isIds = (x: unknown): x is number[] => Array.isArray(x) && x.length > 0 && x.every((t) => Number.isInteger(t) && t >= 0 && t < vocab);
    let list: (string | number[])[];
    if (typeof prompt === 'string') list = [prompt];
    else if (isIds(prompt)) list = [prompt];
    else if (Array.isArray(prompt) && prompt.length > 0 && prompt.every((p) => typeof p === 'string' || isIds(p))) list = prompt as (string | number[])[];
    else throw bad("'prompt' must be a string, a list of strings, a list of token ids (in the vocabulary) or a list of such lists", 'prompt');
    const ids = list.map((p) => (typeof p === 'string' ? this.policy.encodePrompt(p) : p));
    if (ids.some((p) => p.length === 0)) throw bad("'prompt' is empty and the tokenizer adds no BOS token", 'prompt');
    return { ids, texts: list.map((p) => (typeof p === 'string' ? p : this.policy.tokenizer.decode(p))) };
  }

  private check(ids: number[][], s: Sampling): void {
    if (ids.length * s.n > this.maxSequences) throw bad(`prompts x n = ${ids.length * s.n} sequences exceeds the limit of ${this.maxSequences} per request`, 'n');
    const limit = this.policy.config.max_position_embeddings;
    const longest = Math.max(...ids.map((p) => p.length));
    if (longest + s.maxTokens > limit) {
      throw bad(`This model's maximum context length is ${limit} tokens; the prompt has ${longest} tokens and max_tokens is ${s.maxTokens}`, 'max_tokens', 'context_length_exceeded');
    }
  }

  private tokenText(id: number, asIds: boolean): string {
    return asIds ? `token_id:${id}` : this.policy.tokenizer.decode([id]);
  }

  private usage(prompts: number[][], gens: Generated[][]) {
    const prompt = prompts.reduce((a, p) => a + p.length, 0);
    const completion = gens.flat().reduce((a, g) => a + g.ids.length, 0);
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  }

  private async completions(res: ServerResponse, body: Body, s: Sampling): Promise<void> {
    if (body.prompt === undefined) throw bad("'prompt' is required", 'prompt');
    const top = body.logprobs === undefined || body.logprobs === null || body.logprobs === false ? null
      : num(body, 'logprobs', 0, (x) => Number.isInteger(x) && x >= 0 && x <= 5, 'an integer in [0, 5]');
    const asIds = body.return_tokens_as_token_ids === true;
    const { ids } = this.promptIds(body.prompt);
    this.check(ids, s);
    const gens = await this.exclusive(() => run(this.policy, ids, s, top));
    const choices = gens.flatMap((list) => list).map((g, index) => {
      let logprobs = null;
      if (g.logprobs) {
        let offset = 0;
        const offsets: number[] = [];
        for (const t of g.logprobs) {
          offsets.push(offset);
          offset += this.policy.tokenizer.decode([t.id]).length;
        }
        logprobs = {
          tokens: g.logprobs.map((t) => this.tokenText(t.id, asIds)),
          token_logprobs: g.logprobs.map((t) => t.logprob),
          top_logprobs: top ? g.logprobs.map((t) => Object.fromEntries(t.top.map((a) => [this.tokenText(a.id, asIds), a.logprob]))) : null,
          text_offset: offsets,
        };
      }
      return { index, text: g.text, logprobs, finish_reason: g.finishReason };
    });
    send(res, 200, {
      id: `cmpl-${Date.now().toString(36)}${(this.counter++).toString(36)}`, object: 'text_completion', created: Math.floor(Date.now() / 1000),
      model: this.opts.modelName, choices, usage: this.usage(ids, gens),
    });
  }

  private async chat(res: ServerResponse, body: Body, s: Sampling): Promise<void> {
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0) throw bad("'messages' must be a non-empty list", 'messages');
    messages.forEach((m, i) => {
      if (typeof m !== 'object' || m === null || typeof (m as ChatMessage).role !== 'string' || typeof (m as ChatMessage).content !== 'string') {
        throw bad(`'messages[${i}]' must be an object with string 'role' and 'content'`, `messages[${i}]`);
      }
    });
    if (!hasChatTemplate(this.policy.tokenizer)) throw bad('this model has no chat template; use /v1/completions', 'messages');
    const wantLogprobs = body.logprobs === true;
    const top = wantLogprobs ? num(body, 'top_logprobs', 0, (x) => Number.isInteger(x) && x >= 0 && x <= 20, 'an integer in [0, 20]') : null;
    if (!wantLogprobs && body.top_logprobs !== undefined && body.top_logprobs !== null) throw bad("'top_logprobs' needs 'logprobs': true", 'top_logprobs');
    let prompt: number[];
    try {
      prompt = this.policy.tokenizer.encode(applyChatTemplate(this.policy.tokenizer, messages as ChatMessage[]));
    } catch (error) {
      throw bad(`cannot render the chat template: ${(error as Error).message}`, 'messages');
    }
    this.check([prompt], s);
    const gens = await this.exclusive(() => run(this.policy, [prompt], s, top));
    const token = (id: number) => {
      const text = this.policy.tokenizer.decode([id]);
      return { token: text, bytes: [...Buffer.from(text, 'utf8')] };
    };
    const choices = gens[0]!.map((g, index) => ({
      index,
      message: { role: 'assistant', content: g.text },
      logprobs: g.logprobs ? { content: g.logprobs.map((t) => ({ ...token(t.id), logprob: t.logprob, top_logprobs: t.top.map((a) => ({ ...token(a.id), logprob: a.logprob })) })) } : null,
      finish_reason: g.finishReason,
    }));
    send(res, 200, {
      id: `chatcmpl-${Date.now().toString(36)}${(this.counter++).toString(36)}`, object: 'chat.completion', created: Math.floor(Date.now() / 1000),
      model: this.opts.modelName, choices, usage: this.usage([prompt], gens),
    });
  }
}
