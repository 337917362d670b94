/**
 * `empo grade` and `empo entropy` (packages/cli/src/commands/grade.ts), run in-process.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EmpoError } from '@empo/core';
import { entropy, grade } from '../../cli/src/commands/grade.ts';

let dir: string;
let stderr: string[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'empo-grade-cli-'));
  stderr = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr.push(String(chunk));
    return true;
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

function file(name: string, lines: unknown[] | string): string {
  const path = join(dir, name);
  writeFileSync(path, typeof lines === 'string' ? lines : lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  return path;
}

function readLines(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('empo grade', () => {
  it('writes each line back with "extracted" and "correct"', async () => {
    const input = file('in.jsonl', [
      { response: 'So $x = \\boxed{2\\sqrt2}$.', reference: '\\sqrt{8}' },
      { response: 'The answer is 7.', reference: 8, id: 'keep-me' },
      { response: 'I pick \\boxed{(B)}', reference: 'B', mode: 'choice' },
      { response: 'The answer is \\boxed{reduce the carrying capacity}', reference: 'C', mode: 'choice', choices: ['x', 'y', 'reduce the carrying capacity', 'z'] },
      { response: 'Answer: Paris.', reference: 'paris', mode: 'text' },
      { response: 'no idea', reference: '1' },
    ]);
    const output = join(dir, 'out', 'graded.jsonl');
    await grade.run(['--input', input, '--output', output]);
    const rows = readLines(output);
    expect(rows.map((r) => [r.extracted, r.correct])).toEqual([
      ['2\\sqrt2', true],
      ['7', false],
      ['B', true],
      ['C', true],
      ['Paris', true],
      [null, false],
    ]);
    expect(rows[1]!.id).toBe('keep-me');
    expect(stderr.join('')).toContain('graded 6 lines: 4 correct');
  });

  it('writes to stdout without --output', async () => {
    const input = file('in.jsonl', [{ response: '\\boxed{1/2}', reference: '0.5' }]);
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    await grade.run(['--input', input]);
    expect(JSON.parse(out.join(''))).toEqual({ response: '\\boxed{1/2}', reference: '0.5', extracted: '1/2', correct: true });
  });

  it('names the file and line of a bad line', async () => {
    const bad = async (lines: string, message: string) => {
      const input = file('bad.jsonl', lines);
      const error = await grade.run(['--input', input]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EmpoError);
      expect((error as Error).message).toContain(message);
    };
    const ok = JSON.stringify({ response: '1', reference: '1' });
    await bad(`${ok}\n\n{"response": 1, "reference": "1"}\n`, 'bad.jsonl:3: "response" must be a string');
    await bad(`${ok}\n{not json\n`, 'bad.jsonl:2: invalid JSON');
    await bad(`[1,2]\n`, 'bad.jsonl:1: expected a JSON object');
    await bad(`{"response": "x"}\n`, 'bad.jsonl:1: "reference" is required');
    await bad(`{"response": "x", "reference": "1", "mode": "essay"}\n`, 'bad.jsonl:1: "mode" must be one of math, choice, text');
    await bad(`{"response": "x", "reference": "1", "choices": "ABCD"}\n`, 'bad.jsonl:1: "choices" must be a list of strings');
    await expect(grade.run(['--input', join(dir, 'missing.jsonl')])).rejects.toThrow('cannot read --input');
    await expect(grade.run([])).rejects.toThrow('--input is required');
    await expect(grade.run(['--input', 'x', '--mode', 'essay'])).rejects.toThrow('--mode must be one of');
    await expect(grade.run(['--input', 'x', '--judge-url', 'http://127.0.0.1:9/v1'])).rejects.toThrow('--judge-url needs --judge-model');
    await expect(grade.run(['--input', 'x', '--bogus'])).rejects.toThrow("Unknown option '--bogus'");
  });
});

describe('empo entropy', () => {
  it('adds "answers", "cluster_ids", "entropy" and "rewards"', async () => {
    const input = file('groups.jsonl', [
      { responses: ['\\boxed{\\frac12}', 'so 0.5', 'The answer is 0.5', '\\boxed{3}', 'no answer'] },
      { responses: ['\\boxed{A}', 'Answer: (A)', '\\boxed{C}', 'hmm'], mode: 'choice' },
    ]);
    const output = join(dir, 'entropy.jsonl');
    await entropy.run(['--input', input, '--output', output]);
    const [math, choice] = readLines(output);
    expect(math!.answers).toEqual(['\\frac12', null, '0.5', '3', null]);
    expect(math!.cluster_ids).toEqual([0, 1, 0, 2, 3]);
    const p = [2 / 5, 1 / 5, 1 / 5, 1 / 5];
    expect(math!.entropy).toBeCloseTo(-p.reduce((s, q) => s + q * Math.log(q), 0), 12);
    expect(math!.rewards).toEqual([0.4, 0, 0.4, 0.2, 0]);
    expect(choice!.answers).toEqual(['A', 'A', 'C', null]);
    expect(choice!.cluster_ids).toEqual([0, 0, 1, 2]);
  });

  it('takes another reward; gold needs a reference', async () => {
    const input = file('g.jsonl', [{ responses: ['\\boxed{2}', '\\boxed{2}', '\\boxed{3}'], reference: '3' }]);
    const output = join(dir, 'o.jsonl');
    await entropy.run(['--input', input, '--output', output, '--reward', 'majority']);
    expect(readLines(output)[0]!.rewards).toEqual([1, 1, 0]);
    await entropy.run(['--input', input, '--output', output, '--reward', 'gold']);
    expect(readLines(output)[0]!.rewards).toEqual([0, 0, 1]);
    const noRef = file('n.jsonl', [{ responses: ['\\boxed{2}'] }]);
    await expect(entropy.run(['--input', noRef, '--reward', 'gold'])).rejects.toThrow('n.jsonl:1: "reference" is required');
    await expect(entropy.run(['--input', input, '--reward', 'best'])).rejects.toThrow("unknown reward 'best'");
    const bad = file('b.jsonl', '{"responses": "one"}\n');
    await expect(entropy.run(['--input', bad])).rejects.toThrow('b.jsonl:1: "responses" must be a list of strings');
  });
});

describe('empo entropy / grade with a verifier (fake server on 127.0.0.1)', () => {
  it('clusters free-form answers through --judge-url', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const prompt = (JSON.parse(body) as { messages: { content: string }[] }).messages.at(-1)!.content;
        const yes = /Answer 1: (the capital of france|paris)\s*\nAnswer 2: (the capital of france|paris)/i.test(prompt);
        const top = [{ token: 'Yes', logprob: Math.log(yes ? 0.9 : 0.1) }, { token: 'No', logprob: Math.log(yes ? 0.1 : 0.9) }];
        res.end(JSON.stringify({ choices: [{ logprobs: { content: [{ ...top[yes ? 0 : 1]!, top_logprobs: top }] } }] }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const judgeFlags = ['--judge-url', `http://127.0.0.1:${port}/v1`, '--judge-model', 'fake'];
      const input = file('t.jsonl', [{ responses: ['\\boxed{Paris}', 'The answer is the capital of France.', '\\boxed{Lyon}'], mode: 'text' }]);
      const output = join(dir, 't-out.jsonl');
      await entropy.run(['--input', input, '--output', output, ...judgeFlags]);
      expect(readLines(output)[0]!.cluster_ids).toEqual([0, 0, 1]);
      const g = file('tg.jsonl', [{ response: 'The answer is the capital of France.', reference: 'Paris', mode: 'text' }]);
      await grade.run(['--input', g, '--output', output, ...judgeFlags]);
      expect(readLines(output)[0]!.correct).toBe(true);
      await grade.run(['--input', g, '--output', output]);
      expect(readLines(output)[0]!.correct).toBe(false); // without the verifier: text equality only
      const down = ['--judge-url', 'http://127.0.0.1:9/v1', '--judge-model', 'fake'];
      await expect(grade.run(['--input', g, ...down])).rejects.toThrow('tg.jsonl:1: judge request');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
