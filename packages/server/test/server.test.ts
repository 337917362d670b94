import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RunLayout, evalSamplesSpec, readParquetRows, selectBackend, type EmpoConfig } from '@empo/core';
import { evaluateItems, evaluateItemsRemote, itemsFromQueries, readEvalQueries, runEvaluator, summarize } from '@empo/evaluator';
import { CharTokenizer, Policy } from '@empo/policy';
import { runSampler, sampleRollouts, sampleRolloutsRemote } from '@empo/sampler';
import { OpenAIClient, PolicyServer } from '@empo/server';
import { makeTinyWorkspace } from '../../../test/helpers.ts';

let dir: string;
let config: EmpoConfig;
let policy: Policy;
let server: PolicyServer;
let base: string;

async function post(path: string, body: unknown, raw?: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ?? JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

beforeAll(async () => {
  ({ dir, config } = await makeTinyWorkspace({ evaluator: { max_new_tokens: 12, num_samples: 3 } }));
  await selectBackend('cpu');
  policy = await Policy.load(config.model);
  server = new PolicyServer(policy, { modelName: 'tiny', maxBodyBytes: 4096, maxN: 8 });
  const address = await server.listen(0);
  expect(address.address).toBe('127.0.0.1');
  base = `http://127.0.0.1:${address.port}/v1`;
});

afterAll(async () => {
  await server?.close();
  policy?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('empo serve (OpenAI-compatible)', () => {
  it('lists the model', async () => {
    const res = await fetch(`${base}/models`);
    expect(await res.json()).toMatchObject({ object: 'list', data: [{ id: 'tiny', object: 'model' }] });
  });

  it('greedy completions equal in-process generation, with logprobs', async () => {
    const prompt = '12+7=?\n';
    const ids = policy.encodePrompt(prompt);
    const local = policy.generate([ids], { maxNewTokens: 10, temperature: 0 });
    const { status, json } = await post('/completions', { model: 'tiny', prompt, max_tokens: 10, temperature: 0, logprobs: 2, return_tokens_as_token_ids: true });
    expect(status).toBe(200);
    const choice = json.choices[0];
    let tokens = local.tokens[0]!;
    if (local.finished[0]) tokens = tokens.slice(0, -1);
    expect(choice.text).toBe(policy.tokenizer.decode(tokens));
    expect(choice.logprobs.tokens).toEqual(tokens.map((t) => `token_id:${t}`));
    const teacher = policy.completionLogprobs([ids], [tokens])[0]!;
    choice.logprobs.token_logprobs.forEach((lp: number, i: number) => expect(lp).toBeCloseTo(teacher[i]!, 4));
    expect(Object.keys(choice.logprobs.top_logprobs[0])).toHaveLength(2);
    expect(json.usage.completion_tokens).toBe(tokens.length);
  });

  it('n samples, seeds, stop strings and prompt lists', async () => {
    const body = { prompt: ['1+1=?\n', '2+2=?\n'], max_tokens: 8, temperature: 1, n: 3, seed: 5 };
    const a = await post('/completions', body);
    const b = await post('/completions', body);
    expect(a.json.choices).toHaveLength(6);
    expect(a.json.choices.map((c: any) => c.text)).toEqual(b.json.choices.map((c: any) => c.text));
    const full = (await post('/completions', { prompt: '3+4=?\n', max_tokens: 12, temperature: 0 })).json.choices[0].text as string;
    const stopAt = full.slice(2, 3);
    if (full.length > 3 && stopAt) {
      const cut = (await post('/completions', { prompt: '3+4=?\n', max_tokens: 12, temperature: 0, stop: [stopAt] })).json.choices[0];
      expect(cut.text).toBe(full.slice(0, full.indexOf(stopAt)));
      expect(cut.finish_reason).toBe('stop');
    }
  });

  it('answers bad requests with OpenAI-style errors', async () => {
    const cases: [unknown, string | null][] = [
      [{ prompt: 'x', temperature: -1 }, 'temperature'],
      [{ prompt: 'x', n: 100 }, 'n'],
      [{ prompt: 'x', max_tokens: 1e9 }, 'max_tokens'],
      [{ prompt: 'x', stop: [1] }, 'stop'],
      [{ prompt: 'x', stream: true }, 'stream'],
      [{ prompt: 'x', logit_bias: { 5: 10 } }, 'logit_bias'],
      [{ prompt: 'x', presence_penalty: 0.5 }, 'presence_penalty'],
      [{ prompt: 'x', logprobs: 9 }, 'logprobs'],
      [{ prompt: [[1, 99999]] }, 'prompt'],
      [{ prompt: 7 }, 'prompt'],
      [{}, 'prompt'],
    ];
    for (const [body, param] of cases) {
      const { status, json } = await post('/completions', body);
      expect(status).toBe(400);
      expect(json.error).toMatchObject({ type: 'invalid_request_error', param });
      expect(typeof json.error.message).toBe('string');
    }
    expect((await post('/completions', null, '{not json')).status).toBe(400);
    expect((await post('/completions', { prompt: 'x', model: 'gpt-4' })).json.error.code).toBe('model_not_found');
    expect((await post('/completions', { prompt: 'x'.repeat(10_000) })).status).toBe(413);
    // The tiny character tokenizer has no chat template.
    expect((await post('/chat/completions', { messages: [{ role: 'user', content: 'hi' }] })).json.error.param).toBe('messages');
    expect((await post('/chat/completions', { messages: 'hi' })).status).toBe(400);
    expect((await fetch(`${base}/nothing`)).status).toBe(404);
  });

  it('evaluating through the server (engine: openai) gives the in-process greedy accuracy', async () => {
    const items = itemsFromQueries(readEvalQueries(config), config.sampler.prompt_template);
    const local = summarize(0, 'local', evaluateItems(policy, items, config.evaluator, config.seed));
    const client = new OpenAIClient({ baseUrl: base, batchSize: 4, concurrency: 2 });
    const remoteRows = await evaluateItemsRemote(client, items, config.evaluator, config.seed);
    const remote = summarize(0, 'remote', remoteRows);
    expect(remote.questions).toBe(local.questions);
    expect(remote.greedy_accuracy).toBe(local.greedy_accuracy);
    expect(remote.samples).toBe(3);
    // Greedy completions are identical text for text.
    const localRows = evaluateItems(policy, items, config.evaluator, config.seed).filter((r) => r.sample_index === -1);
    expect(remoteRows.filter((r) => r.sample_index === -1).map((r) => r.completion)).toEqual(localRows.map((r) => r.completion));

    // The stage itself, with engine: openai in the config.
    const summary = await runEvaluator({ ...config, evaluator: { ...config.evaluator, engine: 'openai' }, openai: { ...config.openai, base_url: base, api_key_env: null } }, 0);
    expect(summary.greedy_accuracy).toBe(local.greedy_accuracy);
    const rows = readParquetRows(join(RunLayout.fromConfig(config).evalDir(0), 'samples.parquet'), evalSamplesSpec);
    expect(rows).toHaveLength(items.length * 4);
  });

  it('the sampler stage samples rollouts through the server (engine: openai)', async () => {
    const cfg = { ...config, run: 'remote-sample', sampler: { ...config.sampler, engine: 'openai' as const }, openai: { ...config.openai, base_url: base, api_key_env: null },
      trainer: { ...config.trainer, old_logprobs: 'recompute' as const } };
    const out = await runSampler(cfg);
    expect(out.rows).toBe(cfg.sampler.questions_per_step * cfg.sampler.num_generations);
  });

  it('`empo generate` prints what the server returns (greedy and seeded sampling)', async () => {
    const { generate } = await import('../../cli/src/commands/model.ts');
    const cases = [{ temperature: 0, seed: 0 }, { temperature: 0.8, seed: 11 }];
    for (const c of cases) {
      let printed = '';
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
        printed += String(chunk);
        return true;
      });
      try {
        await generate.run(['--model', config.model, '--prompt', '2+5=?\n', '--max-tokens', '10', '--temperature', String(c.temperature), '--top-p', '0.9', '--seed', String(c.seed), '--backend', 'cpu']);
      } finally {
        spy.mockRestore();
      }
      const { json } = await post('/completions', { prompt: '2+5=?\n', max_tokens: 10, temperature: c.temperature, top_p: 0.9, seed: c.seed });
      expect(printed).toBe(json.choices[0].text);
    }
  });

  it('chat completions use the chat template, with logprobs and top_logprobs', async () => {
    const tok = policy.tokenizer as CharTokenizer;
    const chatTok = new CharTokenizer(tok.tokens, tok.specials, { chatTemplate: '{% for m in messages %}{{ m.role }}:{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}a:{% endif %}' });
    const chatPolicy = Policy.init(policy.config, chatTok, 3);
    const chatServer = new PolicyServer(chatPolicy, { modelName: 'chat' });
    const { port } = await chatServer.listen(0);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: '1+2=?' }], max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 }),
      });
      const json = await res.json() as any;
      expect(res.status).toBe(200);
      expect(json.object).toBe('chat.completion');
      const ids = chatTok.encode('user:1+2=?\na:');
      const local = chatPolicy.generate([ids], { maxNewTokens: 6, temperature: 0 });
      let tokens = local.tokens[0]!;
      if (local.finished[0]) tokens = tokens.slice(0, -1);
      const choice = json.choices[0];
      expect(choice.message).toEqual({ role: 'assistant', content: chatTok.decode(tokens) });
      expect(choice.logprobs.content).toHaveLength(tokens.length);
      expect(choice.logprobs.content[0].top_logprobs).toHaveLength(3);
      expect(choice.logprobs.content[0].top_logprobs[0].logprob).toBeGreaterThanOrEqual(choice.logprobs.content[0].logprob);
      expect(json.usage.prompt_tokens).toBe(ids.length);
    } finally {
      await chatServer.close();
      chatPolicy.dispose();
    }
  });

  it('greedy rollouts through the server carry the in-process token ids', async () => {
    const questions = readEvalQueries(config).slice(0, 4);
    const sampler = { ...config.sampler, temperature: 0, num_generations: 2 };
    const local = sampleRollouts(policy, questions, sampler, { step: 1, seed: 0 });
    const client = new OpenAIClient({ baseUrl: base, batchSize: 3 });
    const remote = await sampleRolloutsRemote(client, policy.tokenizer, questions, sampler, { step: 1, seed: 0 });
    expect(remote.map((r) => [r.question_id, r.sample_index, r.prompt, r.completion, r.finished])).toEqual(local.map((r) => [r.question_id, r.sample_index, r.prompt, r.completion, r.finished]));
    expect(remote.map((r) => r.prompt_ids)).toEqual(local.map((r) => r.prompt_ids));
    expect(remote.map((r) => r.completion_ids)).toEqual(local.map((r) => r.completion_ids));
    for (const r of remote) expect(r.logprobs).toHaveLength(r.completion_ids.length);
  });

  it('retries failed requests with backoff and never shows the API key', async () => {
    let calls = 0;
    const { createServer } = await import('node:http');
    const seen: string[] = [];
    const flaky = createServer((req, res) => {
      calls++;
      seen.push(String(req.headers.authorization));
      if (calls < 3) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'overloaded' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ index: 0, text: 'ok', finish_reason: 'stop' }] }));
    });
    await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', () => r()));
    const port = (flaky.address() as { port: number }).port;
    try {
      const client = OpenAIClient.fromConfig(
        { base_url: `http://127.0.0.1:${port}/v1`, model: 'm', api_key_env: 'EMPO_TEST_KEY', batch_size: 8, concurrency: 1, max_retries: 3, timeout_s: 10 },
        { EMPO_TEST_KEY: 'sk-secret-123' },
        { backoffMs: 20 },
      );
      const out = await client.complete(['p'], { maxTokens: 4, temperature: 0 });
      expect(out[0]![0]!.text).toBe('ok');
      expect(calls).toBe(3);
      expect(seen[0]).toBe('Bearer sk-secret-123');
      expect(JSON.stringify(client)).not.toContain('sk-secret');
      calls = -10; // keep failing: the error names the status, never the key
      await expect(client.complete(['p'], { maxTokens: 4, temperature: 0 })).rejects.toThrow(/HTTP 503/);
      await client.complete(['p'], { maxTokens: 4, temperature: 0 }).catch((e: Error) => expect(e.message).not.toContain('sk-secret'));
    } finally {
      flaky.close();
    }
  }, 60_000);
});
