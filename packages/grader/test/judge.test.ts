/**
 * The verifier judges. The HTTP judge talks to a fake OpenAI-compatible server started here
 * on 127.0.0.1 (loopback only, an ephemeral port).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clusterAnswersAsync,
  gradeWithJudge,
  JudgeError,
  judgeEquivalence,
  judgePrompt,
  LocalModelJudge,
  OpenAICompatibleJudge,
  yesNoFromTopLogprobs,
  yesNoToken,
  type YesNo,
} from '../src/index.ts';

const KEY = 'sk-test-SECRET-0123456789';

/** Synonyms the fake judge knows; everything else is "No". */
const SAME = [
  ['paris', 'the capital of france'],
  ['h2o', 'water'],
];

function answersIn(prompt: string): [string, string] {
  const a = /Answer 1: (.*)/.exec(prompt)?.[1] ?? '';
  const b = /Answer 2: (.*)/.exec(prompt)?.[1] ?? '';
  return [a.trim().toLowerCase(), b.trim().toLowerCase()];
}

/** One-directional on purpose: "water" -> "h2o" is judged No, to test the bidirectional mode. */
function fakeVerdict(prompt: string): boolean {
  const [a, b] = answersIn(prompt);
  if (a === b) return true;
  return SAME.some(([x, y]) => a === x && b === y) || (a === 'paris' && b === 'the capital of france') || (a === 'the capital of france' && b === 'paris');
}

interface Seen {
  auth: string | undefined;
  body: Record<string, unknown>;
  url: string;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => (data += chunk));
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

describe('OpenAICompatibleJudge against a fake local server', () => {
  let server: Server;
  let base = '';
  const seen: Seen[] = [];

  beforeAll(async () => {
    server = createServer(async (req, res) => {
      const body = JSON.parse(await readBody(req)) as Record<string, unknown>;
      seen.push({ auth: req.headers.authorization, body, url: req.url ?? '' });
      const model = body.model as string;
      if (req.headers.authorization !== `Bearer ${KEY}`) {
        // Echo the header back, as a careless server might: the client must redact it.
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: `bad key ${req.headers.authorization ?? ''}` }));
        return;
      }
      if (model === 'slow') return void setTimeout(() => res.end('{}'), 2000);
      if (model === 'broken') return void res.end('not json');
      if (model === 'no-logprobs') return void res.end(JSON.stringify({ choices: [{ message: { content: 'Yes' } }] }));
      if (model === 'maybe') {
        return void res.end(JSON.stringify({ choices: [{ logprobs: { content: [{ token: 'Maybe', logprob: -0.1, top_logprobs: [{ token: 'Perhaps', logprob: -2 }] }] } }] }));
      }
      if (req.url === '/v1/completions') {
        const yes = fakeVerdict(body.prompt as string);
        return void res.end(JSON.stringify({
          choices: [{ text: yes ? ' Yes' : ' No', logprobs: { tokens: [yes ? ' Yes' : ' No'], token_logprobs: [Math.log(0.8)], top_logprobs: [{ ' Yes': Math.log(yes ? 0.8 : 0.1), ' No': Math.log(yes ? 0.1 : 0.8) }] } }],
        }));
      }
      const prompt = (body.messages as { role: string; content: string }[]).at(-1)!.content;
      const yes = fakeVerdict(prompt);
      const [pYes, pNo] = yes ? [0.7, 0.2] : [0.15, 0.8];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        choices: [{
          message: { role: 'assistant', content: yes ? 'Yes' : 'No' },
          logprobs: {
            content: [{
              token: yes ? 'Yes' : 'No',
              logprob: Math.log(Math.max(pYes, pNo)),
              top_logprobs: [
                { token: 'Yes', logprob: Math.log(pYes) },
                { token: 'No', logprob: Math.log(pNo) },
                { token: ' yes', logprob: Math.log(0.01) },
                { token: 'The', logprob: Math.log(0.02) },
              ],
            }],
          },
        }],
      }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const env = { EMPO_JUDGE_KEY: KEY };

  it('reads P(Yes) and P(No) from top_logprobs of a one-token chat completion', async () => {
    const judge = new OpenAICompatibleJudge({ baseUrl: `${base}/`, model: 'judge-1', apiKeyEnv: 'EMPO_JUDGE_KEY' }, { env });
    const v = await judge.judge('Paris', 'the capital of France', { question: 'Capital of France?' });
    expect(v.equivalent).toBe(true);
    expect(v.pYes).toBeCloseTo(0.71, 6); // "Yes" + " yes"
    expect(v.pNo).toBeCloseTo(0.2, 6);
    const no = await judge.judge('Paris', 'London');
    expect(no.equivalent).toBe(false);
    const request = seen.at(-1)!;
    expect(request.url).toBe('/v1/chat/completions');
    expect(request.auth).toBe(`Bearer ${KEY}`);
    expect(request.body).toMatchObject({ model: 'judge-1', max_tokens: 1, temperature: 0, logprobs: true, top_logprobs: 20 });
    expect(JSON.stringify(request.body)).not.toContain(KEY);
  });

  it('bidirectional: both orders must say Yes', async () => {
    const one = new OpenAICompatibleJudge({ baseUrl: base, model: 'judge-1', apiKeyEnv: 'EMPO_JUDGE_KEY' }, { env });
    const both = new OpenAICompatibleJudge({ baseUrl: base, model: 'judge-1', apiKeyEnv: 'EMPO_JUDGE_KEY', bidirectional: true }, { env });
    expect((await one.judge('H2O', 'water')).equivalent).toBe(true);
    expect((await both.judge('H2O', 'water')).equivalent).toBe(false);
    expect((await both.judge('Paris', 'the capital of France')).equivalent).toBe(true);
  });

  it('supports the legacy completions endpoint', async () => {
    const judge = new OpenAICompatibleJudge({ baseUrl: base, model: 'judge-1', apiKeyEnv: 'EMPO_JUDGE_KEY', endpoint: 'completions' }, { env });
    const v = await judge.judge('Paris', 'the capital of France');
    expect(v.equivalent).toBe(true);
    expect(seen.at(-1)!.url).toBe('/v1/completions');
    expect(seen.at(-1)!.body).toMatchObject({ max_tokens: 1, logprobs: 5 });
  });

  it('caches verdicts per prompt', async () => {
    const judge = new OpenAICompatibleJudge({ baseUrl: base, model: 'judge-1', apiKeyEnv: 'EMPO_JUDGE_KEY' }, { env });
    const before = seen.length;
    await judge.judge('a1', 'a2');
    await judge.judge('a1', 'a2');
    expect(seen.length - before).toBe(1);
  });

  it('errors are JudgeErrors that never contain the key', async () => {
    const wrong = new OpenAICompatibleJudge({ baseUrl: base, model: 'judge-1', apiKeyEnv: 'EMPO_JUDGE_KEY' }, { env: { EMPO_JUDGE_KEY: `${KEY}-wrong` } });
    const err = (await wrong.judge('a', 'b').catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(JudgeError);
    expect(err.message).toContain('HTTP 401');
    expect(err.message).not.toContain(KEY);
    expect(err.message).toContain('[redacted]');

    const unset = new OpenAICompatibleJudge({ baseUrl: base, model: 'judge-1', apiKeyEnv: 'EMPO_JUDGE_KEY' }, { env: {} });
    await expect(unset.judge('a', 'b')).rejects.toThrow('environment variable EMPO_JUDGE_KEY is not set');

    const slow = new OpenAICompatibleJudge({ baseUrl: base, model: 'slow', apiKeyEnv: 'EMPO_JUDGE_KEY', timeoutMs: 200 }, { env });
    await expect(slow.judge('a', 'b')).rejects.toThrow('timed out after 200 ms');
    const broken = new OpenAICompatibleJudge({ baseUrl: base, model: 'broken', apiKeyEnv: 'EMPO_JUDGE_KEY' }, { env });
    await expect(broken.judge('a', 'b')).rejects.toThrow('is not JSON');
    const bare = new OpenAICompatibleJudge({ baseUrl: base, model: 'no-logprobs', apiKeyEnv: 'EMPO_JUDGE_KEY' }, { env });
    await expect(bare.judge('a', 'b')).rejects.toThrow('has no logprobs');
    const maybe = new OpenAICompatibleJudge({ baseUrl: base, model: 'maybe', apiKeyEnv: 'EMPO_JUDGE_KEY' }, { env });
    await expect(maybe.judge('a', 'b')).rejects.toThrow('neither Yes nor No');
    const closed = new OpenAICompatibleJudge({ baseUrl: 'http://127.0.0.1:9/v1', model: 'm', apiKeyEnv: 'EMPO_JUDGE_KEY' }, { env });
    const refused = (await closed.judge('a', 'b').catch((e: unknown) => e)) as Error;
    expect(refused).toBeInstanceOf(JudgeError);
    expect(refused.message).not.toContain(KEY);
    expect(() => new OpenAICompatibleJudge({ baseUrl: 'file:///etc/passwd', model: 'm' })).toThrow('http(s) URL');
  });

  it('clusters free-form answers with the judge', async () => {
    const judge = new OpenAICompatibleJudge({ baseUrl: base, model: 'judge-1', apiKeyEnv: 'EMPO_JUDGE_KEY' }, { env });
    const eq = judgeEquivalence(judge, { question: 'Capital of France?' });
    const c = await clusterAnswersAsync(['Paris', 'the capital of France', 'London', 'paris.', null, 'London'], eq);
    expect(c.clusterIds).toEqual([0, 0, 1, 0, 2, 1]);
    expect(c.clusterSizes).toEqual([3, 2, 1]);
    expect(await gradeWithJudge('the capital of France', 'Paris', judge)).toBe(true);
    expect(await gradeWithJudge(null, 'Paris', judge)).toBe(false);
  });
});

describe('LocalModelJudge', () => {
  it('asks a local scorer and compares P(Yes) with P(No)', async () => {
    const prompts: string[] = [];
    const scorer = (prompt: string): YesNo => {
      prompts.push(prompt);
      return fakeVerdict(prompt) ? { pYes: 0.6, pNo: 0.3 } : { pYes: 0.2, pNo: 0.7 };
    };
    const judge = new LocalModelJudge(scorer);
    expect(await judge.judge('Paris', 'the capital of France')).toEqual({ pYes: 0.6, pNo: 0.3, equivalent: true });
    expect((await judge.judge('Paris', 'Rome')).equivalent).toBe(false);
    const strict = new LocalModelJudge(async (p) => scorer(p), { bidirectional: true });
    expect((await strict.judge('H2O', 'water')).equivalent).toBe(false);
    expect(prompts.some((p) => p.includes('Answer 1: water'))).toBe(true);
    const bad = new LocalModelJudge(() => ({ pYes: Number.NaN, pNo: 0 }));
    await expect(bad.judge('a', 'b')).rejects.toThrow('invalid probabilities');
  });
  it('clusters with the math pipeline first and the judge only when needed', async () => {
    let calls = 0;
    const judge = new LocalModelJudge(() => {
      calls++;
      return { pYes: 0.1, pNo: 0.9 };
    });
    const c = await clusterAnswersAsync(['\\frac12', '0.5', '3'], judgeEquivalence(judge, { mode: 'math' }));
    expect(c.clusterIds).toEqual([0, 0, 1]);
    expect(calls).toBe(1); // only 3 vs 1/2
  });
});

describe('judge helpers', () => {
  it('builds the prompt once per placeholder', () => {
    const p = judgePrompt('x {b}', 'y', { question: 'Q?' });
    expect(p).toContain('Question: Q?');
    expect(p).toContain('Answer 1: x {b}');
    expect(p).toContain('Answer 2: y');
    expect(judgePrompt('a', 'b')).not.toContain('Question');
  });
  it('recognizes Yes / No tokens', () => {
    expect(yesNoToken(' Yes')).toBe('yes');
    expect(yesNoToken('ĠNO.')).toBe('no');
    expect(yesNoToken('▁yes')).toBe('yes');
    expect(yesNoToken('Yesterday')).toBeNull();
    expect(yesNoFromTopLogprobs([{ token: 'The', logprob: -1 }])).toBeNull();
    expect(yesNoFromTopLogprobs([{ token: 'Yes', logprob: 0 }, { token: 'yes', logprob: 0 }])).toEqual({ pYes: 1, pNo: 0 });
  });
});
