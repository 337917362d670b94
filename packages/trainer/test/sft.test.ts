import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, selectBackend } from '@empo/core';
import { CharTokenizer, Policy, tinyConfig } from '@empo/policy';
import { noisySolution, sampleProblems } from '@empo/tasks';
import { heldOutLoss, readSftRows, runSftLoop, sftExample } from '../src/index.ts';
import { learningRateAt } from '../src/schedule.ts';

beforeAll(async () => {
  await selectBackend('wasm', true);
});

describe('SFT', () => {
  it('lowers the held-out loss on the arithmetic task', async () => {
    const rng = new Rng(1);
    const pairs = sampleProblems('pretrain', 400, 3).map((p) => ({ prompt: `${p.question}\n`, completion: noisySolution(p, rng, 0.1).solution }));
    const tokenizer = CharTokenizer.fromCorpus(pairs.flatMap((p) => [p.prompt, p.completion]));
    const policy = Policy.init(tinyConfig({
      vocabSize: tokenizer.vocabSize, hiddenSize: 32, numLayers: 1, numHeads: 2, intermediateSize: 64,
      bosId: tokenizer.bosId, eosId: tokenizer.eosId, padId: tokenizer.padId, maxPositions: 64,
    }), tokenizer, 0);
    const examples = pairs.map((p) => sftExample(policy, p));
    const heldOut = examples.slice(0, 64);
    const before = heldOutLoss(policy, heldOut, 32);
    const curve = await runSftLoop(policy, examples.slice(64), heldOut, {
      steps: 60, batchSize: 16, learningRate: 1e-2, warmupSteps: 5, schedule: 'cosine', weightDecay: 0, maxGradNorm: 1, seed: 0, evalEvery: 30,
    });
    const after = curve.at(-1)!.heldOut;
    expect(after).toBeLessThan(0.75 * before);
    expect(after).toBeCloseTo(heldOutLoss(policy, heldOut, 32), 5);
    policy.dispose();
  });

  it('reads JSONL pairs and names the bad line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'empo-sft-'));
    writeFileSync(join(dir, 'ok.jsonl'), '{"prompt":"a","completion":"b"}\n\n{"prompt":"c","completion":"d"}\n');
    expect(readSftRows(join(dir, 'ok.jsonl'))).toEqual([{ prompt: 'a', completion: 'b' }, { prompt: 'c', completion: 'd' }]);
    writeFileSync(join(dir, 'bad.jsonl'), '{"prompt":"a","completion":"b"}\n{"prompt":1}\n');
    expect(() => readSftRows(join(dir, 'bad.jsonl'))).toThrow(/bad\.jsonl:2: each line needs string fields/);
    expect(() => readSftRows(join(dir, 'x.csv'))).toThrow(/file not found/);
  });

  it('schedules warmup, constant and cosine learning rates', () => {
    const s = { base: 1, warmupSteps: 10, kind: 'cosine' as const, minRatio: 0.1 };
    expect(learningRateAt(5, 110, s)).toBeCloseTo(0.5, 12);
    expect(learningRateAt(10, 110, s)).toBeCloseTo(1, 12);
    expect(learningRateAt(60, 110, s)).toBeCloseTo(0.1 + 0.9 * 0.5, 12);
    expect(learningRateAt(110, 110, s)).toBeCloseTo(0.1, 12);
    expect(learningRateAt(50, 110, { ...s, kind: 'constant' })).toBe(1);
  });
});
