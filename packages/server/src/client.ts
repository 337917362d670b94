/**
 * A small client of the OpenAI-compatible completions API (vLLM, SGLang, llama.cpp server, `empo serve`):
 * the "openai" engine of the sampler and the evaluator. Prompts are sent in batches (the API takes a list
 * of prompts), several requests at once, and a failed request (connection error, 408, 409, 429, 5xx) is
 * retried with exponential backoff. The API key comes from an environment variable; it is sent only in
 * the Authorization header and never appears in a message, log line or file.
 */
import { EmpoError, log, type OpenAIConfig } from '@empo/core';

export interface OpenAIClientOptions {
  /** Base URL ending in /v1. */
  baseUrl: string;
  /** Model name; null = the first model listed by /v1/models. */
  model?: string | null;
  apiKey?: string | null;
  /** Prompts per request (default 16). */
  batchSize?: number;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** Retries per request (default 5). */
  maxRetries?: number;
  /** Timeout per request in ms (default 600 s). */
  timeoutMs?: number;
  /** First backoff delay in ms (default 500; doubled per retry, capped at 30 s). */
  backoffMs?: number;
}

export interface CompleteOptions {
  maxTokens: number;
  temperature: number;
  topP?: number;
  /** Completions per prompt. */
  n?: number;
  /** Base seed: request i of the call sends seed + i, so a run is reproducible on engines that honour seeds. */
  seed?: number;
  /** Ask for the sampled tokens' log-probs and token ids (vLLM's return_tokens_as_token_ids). */
  logprobs?: boolean;
  stop?: string[];
}

export interface RemoteCompletion {
  text: string;
  finishReason: string | null;
  /** Completion token ids, when the server returned them ("token_id:N" tokens), else null. */
  tokenIds: number[] | null;
  /** Log-prob of each completion token, when asked for. */
  logprobs: number[] | null;
}

export class OpenAIError extends EmpoError {
  override name = 'OpenAIError';
  constructor(message: string, readonly status: number | null = null) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const retryable = (status: number) => status === 408 || status === 409 || status === 429 || status >= 500;

export class OpenAIClient {
  readonly baseUrl: string;
  private model: string | null;
  readonly #apiKey: string | null;
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;
  private readonly backoffMs: number;

  constructor(opts: OpenAIClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.model = opts.model ?? null;
    this.#apiKey = opts.apiKey ?? null;
    this.batchSize = opts.batchSize ?? 16;
    this.concurrency = opts.concurrency ?? 4;
    this.maxRetries = opts.maxRetries ?? 5;
    this.timeoutMs = opts.timeoutMs ?? 600_000;
    this.backoffMs = opts.backoffMs ?? 500;
  }

  /** A client from the config's openai section; the key is read from the environment variable it names. */
  static fromConfig(config: OpenAIConfig, env: NodeJS.ProcessEnv = process.env, extra: Partial<OpenAIClientOptions> = {}): OpenAIClient {
    const key = config.api_key_env ? env[config.api_key_env] : undefined;
    return new OpenAIClient({
      baseUrl: config.base_url, model: config.model, apiKey: key && key.length > 0 ? key : null,
      batchSize: config.batch_size, concurrency: config.concurrency, maxRetries: config.max_retries, timeoutMs: config.timeout_s * 1000, ...extra,
    });
  }

  /** Never print the key: a client shows as its URL and model only. */
  toJSON(): Record<string, unknown> {
    return { baseUrl: this.baseUrl, model: this.model, apiKey: this.#apiKey ? '(set)' : null };
  }

  private async request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const url = `${this.baseUrl}${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    let lastError = '';
    for (let attempt = 0; ; attempt++) {
      let retryAfterMs: number | null = null;
      try {
        const response = await fetch(url, {
          method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(this.timeoutMs),
        });
        const text = await response.text();
        if (response.ok) {
          try {
            return JSON.parse(text);
          } catch {
            throw new OpenAIError(`${method} ${url}: the response is not JSON`, response.status);
          }
        }
        let message = text.slice(0, 300);
        try {
          const parsed = JSON.parse(text) as { error?: { message?: string } };
          if (parsed.error?.message) message = parsed.error.message;
        } catch {
          // not JSON: keep the text
        }
        lastError = `HTTP ${response.status}: ${message}`;
        if (!retryable(response.status)) throw new OpenAIError(`${method} ${url}: ${lastError}`, response.status);
        const after = Number(response.headers.get('retry-after'));
        if (Number.isFinite(after) && after > 0) retryAfterMs = Math.min(after * 1000, 60_000);
      } catch (error) {
        if (error instanceof OpenAIError) throw error;
        lastError = (error as Error).name === 'TimeoutError' ? `timed out after ${this.timeoutMs} ms` : String((error as Error).cause ?? (error as Error).message);
      }
      if (attempt >= this.maxRetries) {
        throw new OpenAIError(`${method} ${url}: failed after ${attempt + 1} attempt(s): ${lastError}`);
      }
      const delay = retryAfterMs ?? Math.min(30_000, this.backoffMs * 2 ** attempt) * (0.75 + Math.random() * 0.5);
      log.warn(`openai: ${method} ${url}: ${lastError}; retry ${attempt + 1}/${this.maxRetries} in ${(delay / 1000).toFixed(1)}s`);
      await sleep(delay);
    }
  }

  /** Model ids the server lists. */
  async models(): Promise<string[]> {
    const body = (await this.request('GET', '/models')) as { data?: { id: string }[] };
    return (body.data ?? []).map((m) => m.id);
  }

  /** The model name requests carry: the configured one, else the first listed. */
  async resolveModel(): Promise<string> {
    if (this.model) return this.model;
    const models = await this.models();
    if (models.length === 0) throw new OpenAIError(`${this.baseUrl}/models lists no model; set openai.model`);
    this.model = models[0]!;
    return this.model;
  }

  /** n completions of each prompt (result[i][j]: prompt i, completion j), batched and retried. */
  async complete(prompts: readonly string[], opts: CompleteOptions): Promise<RemoteCompletion[][]> {
    const model = await this.resolveModel();
    const n = opts.n ?? 1;
    const batches: { start: number; prompts: string[] }[] = [];
    for (let start = 0; start < prompts.length; start += this.batchSize) batches.push({ start, prompts: prompts.slice(start, start + this.batchSize) });
    const out: RemoteCompletion[][] = prompts.map(() => []);
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const b = next++;
        const batch = batches[b]!;
        const body: Record<string, unknown> = {
          model, prompt: batch.prompts, max_tokens: opts.maxTokens, temperature: opts.temperature, top_p: opts.topP ?? 1, n,
        };
        if (opts.seed !== undefined) body.seed = (opts.seed + b) >>> 0;
        if (opts.stop?.length) body.stop = opts.stop;
        if (opts.logprobs) {
          body.logprobs = 1;
          body.return_tokens_as_token_ids = true;
        }
        const res = (await this.request('POST', '/completions', body)) as { choices?: unknown[] };
        if (!Array.isArray(res.choices) || res.choices.length !== batch.prompts.length * n) {
          throw new OpenAIError(`POST ${this.baseUrl}/completions: expected ${batch.prompts.length * n} choices, got ${Array.isArray(res.choices) ? res.choices.length : 'none'}`);
        }
        const choices = (res.choices as { index?: number; text: string; finish_reason?: string | null; logprobs?: { tokens?: string[]; token_logprobs?: (number | null)[] } | null }[])
          .map((c, i) => ({ ...c, index: c.index ?? i }))
          .sort((a, b2) => a.index - b2.index);
        choices.forEach((c, i) => {
          const tokens = c.logprobs?.tokens;
          const ids = tokens && tokens.every((t) => /^token_id:\d+$/.test(t)) ? tokens.map((t) => Number(t.slice(9))) : null;
          const lps = c.logprobs?.token_logprobs ? c.logprobs.token_logprobs.map((x) => x ?? 0) : null;
          out[batch.start + Math.floor(i / n)]!.push({ text: c.text ?? '', finishReason: c.finish_reason ?? null, tokenIds: ids, logprobs: lps });
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, batches.length) }, worker));
    return out;
  }
}
