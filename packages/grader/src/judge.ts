/**
 * Free-form equivalence with a verifier judge: an LLM is asked "are these two answers
 * equivalent?" and P(Yes) is compared with P(No). Two judges are provided:
 * - `OpenAICompatibleJudge`: an OpenAI-compatible HTTP endpoint (vLLM, llama.cpp server,
 *   OpenAI ...): base URL and model from config, API key read from the environment variable
 *   named in config (never logged, never put in an error message), one-token completion
 *   with `logprobs` / `top_logprobs`, a fetch timeout.
 * - `LocalModelJudge`: any function `(prompt) => { pYes, pNo }`, e.g. the policy package
 *   scoring the two next-token probabilities of a local model.
 * Both can be bidirectional (the stricter "entailment both ways": a ~ b and b ~ a).
 * `judgeEquivalence` combines normalized text equality (no judge call) with a judge, and
 * `clusterAnswersAsync` clusters with such an asynchronous equivalence.
 */
import type { AnswerMode } from './extract.ts';
import { answerMatches } from './grade.ts';
import { isUnextractable } from './guards.ts';
import { greedyClustering, type Clustering } from './cluster.ts';

/** Probabilities of the two answers "Yes" and "No" (not necessarily summing to 1). */
export interface YesNo {
  pYes: number;
  pNo: number;
}

export interface JudgeVerdict extends YesNo {
  /** pYes > pNo (in both directions when bidirectional). */
  equivalent: boolean;
}

export interface JudgeContext {
  /** The question both answers respond to (gives the judge context; optional). */
  question?: string;
}

/** A verifier that decides whether two free-form answers say the same thing. */
export interface Judge {
  judge(a: string, b: string, context?: JudgeContext): Promise<JudgeVerdict>;
}

/** An error of the judge (transport, timeout, unreadable reply). Never contains the API key. */
export class JudgeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JudgeError';
  }
}

/** The default prompt; `{question}`, `{a}`, `{b}` are replaced (the question line is dropped when absent). */
export const DEFAULT_JUDGE_TEMPLATE = [
  'You are a careful grader. Decide whether the two answers below are equivalent: they give the same final answer to the question, possibly in different words or notation.',
  'Question: {question}',
  'Answer 1: {a}',
  'Answer 2: {b}',
  'Are Answer 1 and Answer 2 equivalent? Reply with Yes or No only.',
].join('\n');

/** Longest answer text put into a prompt (longer ones are cut). */
export const MAX_JUDGE_ANSWER_CHARS = 2000;

export function judgePrompt(a: string, b: string, context?: JudgeContext, template = DEFAULT_JUDGE_TEMPLATE): string {
  const cut = (s: string) => (s.length > MAX_JUDGE_ANSWER_CHARS ? `${s.slice(0, MAX_JUDGE_ANSWER_CHARS)}...` : s);
  const lines = template.split('\n').filter((line) => context?.question !== undefined || !line.includes('{question}'));
  // One pass over the placeholders, so that answer text containing `{b}` is not substituted again.
  return lines
    .join('\n')
    .replace(/\{(question|a|b)\}/g, (_, key: string) => cut(key === 'a' ? a : key === 'b' ? b : (context?.question ?? '')));
}

export interface ProbabilityJudgeOptions {
  /** Ask both orders (a, b) and (b, a); equivalent only when both say Yes (default false). */
  bidirectional?: boolean;
  /** Prompt template (default `DEFAULT_JUDGE_TEMPLATE`). */
  template?: string;
  /** Remember verdicts per (question, a, b) (default true; at most 10,000 entries). */
  cache?: boolean;
}

const JUDGE_CACHE_SIZE = 10_000;

/** Shared logic: prompts, both directions, caching; subclasses score one prompt. */
export abstract class ProbabilityJudge implements Judge {
  readonly bidirectional: boolean;
  readonly template: string;
  private readonly cache: Map<string, Promise<YesNo>> | null;

  constructor(options: ProbabilityJudgeOptions = {}) {
    this.bidirectional = options.bidirectional ?? false;
    this.template = options.template ?? DEFAULT_JUDGE_TEMPLATE;
    this.cache = options.cache === false ? null : new Map();
  }

  /** P(Yes), P(No) for one prompt. */
  protected abstract score(prompt: string): Promise<YesNo>;

  private scoreCached(prompt: string): Promise<YesNo> {
    if (this.cache === null) return this.score(prompt);
    const hit = this.cache.get(prompt);
    if (hit !== undefined) return hit;
    const pending = this.score(prompt);
    this.cache.set(prompt, pending);
    pending.catch(() => this.cache?.delete(prompt)); // failures are not remembered
    if (this.cache.size > JUDGE_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    return pending;
  }

  async judge(a: string, b: string, context?: JudgeContext): Promise<JudgeVerdict> {
    const forward = await this.scoreCached(judgePrompt(a, b, context, this.template));
    checkYesNo(forward);
    if (!this.bidirectional) return { ...forward, equivalent: forward.pYes > forward.pNo };
    const backward = await this.scoreCached(judgePrompt(b, a, context, this.template));
    checkYesNo(backward);
    const equivalent = forward.pYes > forward.pNo && backward.pYes > backward.pNo;
    // Report the weaker direction.
    const weaker = forward.pYes - forward.pNo <= backward.pYes - backward.pNo ? forward : backward;
    return { pYes: weaker.pYes, pNo: weaker.pNo, equivalent };
  }
}

function checkYesNo(p: YesNo): void {
  const ok = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 1 + 1e-9;
  if (!ok(p.pYes) || !ok(p.pNo)) throw new JudgeError(`judge returned invalid probabilities ${JSON.stringify(p)}`);
}

/** A judge backed by a local model: `score(prompt)` returns P(Yes), P(No) of the next token. */
export class LocalModelJudge extends ProbabilityJudge {
  constructor(
    private readonly scorer: (prompt: string) => YesNo | Promise<YesNo>,
    options: ProbabilityJudgeOptions = {},
  ) {
    super(options);
  }

  protected async score(prompt: string): Promise<YesNo> {
    return this.scorer(prompt);
  }
}

/** Configuration of the HTTP judge (plain data, so that it can come from the run config). */
export interface OpenAIJudgeConfig {
  /** Base URL including the version prefix, e.g. `http://127.0.0.1:8000/v1`. */
  baseUrl: string;
  /** Model name sent in the request. */
  model: string;
  /** Name of the environment variable holding the API key (none: no Authorization header). */
  apiKeyEnv?: string;
  /** `chat` (POST /chat/completions, default) or `completions` (POST /completions). */
  endpoint?: 'chat' | 'completions';
  /** Request timeout in milliseconds (default 30,000). */
  timeoutMs?: number;
  /** Alternatives requested per position (default 20; OpenAI allows at most 20). */
  topLogprobs?: number;
  /** Optional system message for the chat endpoint. */
  system?: string;
  bidirectional?: boolean;
  template?: string;
}

export interface OpenAIJudgeDeps {
  /** Environment to read the key from (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  /** fetch implementation (default the global one). */
  fetch?: typeof fetch;
}

interface TopLogprob {
  token: string;
  logprob: number;
}

/** `Yes`, ` yes`, `YES.`, `Ġyes`, `▁Yes` -> 'yes'; `No` ... -> 'no'; else null. */
export function yesNoToken(token: string): 'yes' | 'no' | null {
  const t = token.replace(/^[\sĠ▁]+/, '').replace(/[\s.!,:;]+$/, '').toLowerCase();
  return t === 'yes' ? 'yes' : t === 'no' ? 'no' : null;
}

/** P(Yes), P(No) summed over the alternatives of the first position; null when neither appears. */
export function yesNoFromTopLogprobs(alternatives: readonly TopLogprob[]): YesNo | null {
  let pYes = 0;
  let pNo = 0;
  let seen = false;
  for (const alt of alternatives) {
    if (typeof alt?.token !== 'string' || typeof alt.logprob !== 'number') continue;
    const kind = yesNoToken(alt.token);
    if (kind === null) continue;
    seen = true;
    const p = Math.exp(alt.logprob);
    if (kind === 'yes') pYes += p;
    else pNo += p;
  }
  return seen ? { pYes: Math.min(pYes, 1), pNo: Math.min(pNo, 1) } : null;
}

/** The first position's alternatives from a chat or completions response body. */
function firstPositionAlternatives(body: unknown, endpoint: 'chat' | 'completions'): TopLogprob[] | null {
  const choice = (body as { choices?: unknown[] })?.choices?.[0] as Record<string, unknown> | undefined;
  const logprobs = choice?.logprobs as Record<string, unknown> | null | undefined;
  if (!logprobs) return null;
  if (endpoint === 'chat') {
    const first = (logprobs.content as { token: string; logprob: number; top_logprobs?: TopLogprob[] }[] | undefined)?.[0];
    if (!first) return null;
    return withSampled(first.top_logprobs ?? [], first.token, first.logprob);
  }
  // Legacy completions: top_logprobs is a list (per position) of { token: logprob } maps.
  const top = (logprobs.top_logprobs as Record<string, number>[] | undefined)?.[0];
  const tokens = logprobs.tokens as string[] | undefined;
  const tokenLogprobs = logprobs.token_logprobs as number[] | undefined;
  const out: TopLogprob[] = top ? Object.entries(top).map(([token, logprob]) => ({ token, logprob })) : [];
  return withSampled(out, tokens?.[0], tokenLogprobs?.[0]);
}

/** The alternatives plus the sampled token when it is not among them (it usually is). */
function withSampled(alternatives: readonly TopLogprob[], token: unknown, logprob: unknown): TopLogprob[] {
  const out = [...alternatives];
  if (typeof token === 'string' && typeof logprob === 'number' && !out.some((a) => a?.token === token)) out.push({ token, logprob });
  return out;
}

/** A judge served by an OpenAI-compatible endpoint. */
export class OpenAICompatibleJudge extends ProbabilityJudge {
  private readonly config: Required<Pick<OpenAIJudgeConfig, 'baseUrl' | 'model' | 'endpoint' | 'timeoutMs' | 'topLogprobs'>> &
    Pick<OpenAIJudgeConfig, 'apiKeyEnv' | 'system'>;
  private readonly env: Readonly<Record<string, string | undefined>>;
  private readonly fetchImpl: typeof fetch;

  constructor(config: OpenAIJudgeConfig, deps: OpenAIJudgeDeps = {}) {
    super({ bidirectional: config.bidirectional, template: config.template });
    if (typeof config.baseUrl !== 'string' || !/^https?:\/\//.test(config.baseUrl)) {
      throw new JudgeError(`judge baseUrl must be an http(s) URL, got ${JSON.stringify(config.baseUrl)}`);
    }
    if (typeof config.model !== 'string' || config.model.length === 0) throw new JudgeError('judge model must be a non-empty string');
    const timeoutMs = config.timeoutMs ?? 30_000;
    if (!(timeoutMs > 0)) throw new JudgeError(`judge timeoutMs must be positive, got ${timeoutMs}`);
    this.config = {
      baseUrl: config.baseUrl.replace(/\/+$/, ''),
      model: config.model,
      endpoint: config.endpoint ?? 'chat',
      timeoutMs,
      topLogprobs: config.topLogprobs ?? 20,
      apiKeyEnv: config.apiKeyEnv,
      system: config.system,
    };
    this.env = deps.env ?? process.env;
    this.fetchImpl = deps.fetch ?? globalThis.fetch;
  }

  /** The key, read at call time; an error names the variable, never the value. */
  private apiKey(): string | null {
    const name = this.config.apiKeyEnv;
    if (name === undefined || name === '') return null;
    const key = this.env[name];
    if (key === undefined || key === '') throw new JudgeError(`judge API key: environment variable ${name} is not set`);
    return key;
  }

  protected async score(prompt: string): Promise<YesNo> {
    const { baseUrl, model, endpoint, timeoutMs, topLogprobs, system } = this.config;
    const key = this.apiKey();
    const redact = (s: string) => (key ? s.split(key).join('[redacted]') : s);
    const url = `${baseUrl}/${endpoint === 'chat' ? 'chat/completions' : 'completions'}`;
    const body =
      endpoint === 'chat'
        ? {
            model,
            messages: [...(system ? [{ role: 'system', content: system }] : []), { role: 'user', content: prompt }],
            max_tokens: 1,
            temperature: 0,
            logprobs: true,
            top_logprobs: topLogprobs,
          }
        : { model, prompt, max_tokens: 1, temperature: 0, logprobs: Math.min(topLogprobs, 5) };
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (key) headers.authorization = `Bearer ${key}`;
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const e = error as Error;
      if (e?.name === 'TimeoutError' || e?.name === 'AbortError') throw new JudgeError(`judge request to ${url} timed out after ${timeoutMs} ms`);
      throw new JudgeError(redact(`judge request to ${url} failed: ${e?.message ?? String(error)}`));
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw new JudgeError(redact(`judge request to ${url}: reading the reply failed: ${(error as Error)?.message}`));
    }
    if (!response.ok) throw new JudgeError(redact(`judge request to ${url} failed: HTTP ${response.status}: ${text.slice(0, 200)}`));
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new JudgeError(redact(`judge reply from ${url} is not JSON: ${text.slice(0, 200)}`));
    }
    const alternatives = firstPositionAlternatives(parsed, endpoint);
    if (alternatives === null) throw new JudgeError(`judge reply from ${url} has no logprobs (does the server support logprobs / top_logprobs?)`);
    const yesNo = yesNoFromTopLogprobs(alternatives);
    if (yesNo === null) throw new JudgeError(`judge reply from ${url}: neither Yes nor No among the top ${alternatives.length} tokens`);
    return yesNo;
  }
}

/** An equivalence that may ask a judge. */
export type AsyncEquivalence = (a: string, b: string) => Promise<boolean> | boolean;

export interface JudgeEquivalenceOptions {
  /** How answers are compared before the judge is asked (default 'text'). */
  mode?: AnswerMode;
  question?: string;
}

/**
 * Free-form equivalence: `answerMatches` in `mode` (normalized text equality for 'text',
 * the math pipeline too) and, only when that says no, the judge. Judge errors propagate.
 */
export function judgeEquivalence(judge: Judge, options: JudgeEquivalenceOptions = {}): AsyncEquivalence {
  const mode = options.mode ?? 'text';
  return async (a, b) => {
    if (answerMatches(a, b, mode)) return true;
    if (mode === 'choice') return false;
    return (await judge.judge(a, b, { question: options.question })).equivalent;
  };
}

/**
 * `clusterAnswers` with an asynchronous equivalence (a judge): the same greedy algorithm,
 * comparisons made one at a time in order, so the result does not depend on timing.
 */
export async function clusterAnswersAsync(
  answers: readonly (string | null)[],
  equivalent: AsyncEquivalence,
): Promise<Clustering> {
  const steps = greedyClustering(answers);
  let step = steps.next();
  while (!step.done) step = steps.next(await equivalent(...step.value));
  return step.value;
}

/**
 * `gradeResponse` for free-form answers with a judge: extraction and `answerMatches` first,
 * the judge only when they say no. Judge errors propagate.
 */
export async function gradeWithJudge(
  extracted: string | null,
  reference: string | null,
  judge: Judge,
  context?: JudgeContext,
): Promise<boolean> {
  if (extracted === null || reference === null || isUnextractable(extracted)) return false;
  if (answerMatches(extracted, reference, 'text')) return true;
  return (await judge.judge(extracted, reference, context)).equivalent;
}
