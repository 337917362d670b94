/**
 * Memory: a 0.5B-parameter checkpoint (Qwen2.5-0.5B's config.json and the real Qwen tokenizer, random BF16
 * weights written by a test helper into a temporary folder, ~1 GB, removed afterwards) loads in a child
 * process whose peak resident memory stays under 6 GB, and scores a completion there.
 * SLOW: about 30 s (writing 1 GB, loading 494M parameters on wasm, one forward pass).
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { formatMemory, memoryReport, peakMemoryMB, resetPeakMemory, rssMB } from '../src/index.ts';
import { tempDir } from './helpers.ts';
import { hfTensorShapes, QWEN25_05B, QWEN_TOKENIZER_DIR, writeRandomBf16Safetensors } from './hf-fixtures.ts';


const LIMIT_MB = 6 * 1024;
const here = dirname(fileURLToPath(import.meta.url));

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('empo-policy-05b-'));
});
afterAll(() => cleanup());

describe('memory', () => {
  test('peak / current RSS helpers', () => {
    const r = memoryReport();
    expect(r.rssMB).toBeGreaterThan(10);
    expect(r.peakRssMB).toBeGreaterThanOrEqual(r.rssMB - 1);
    expect(peakMemoryMB()).toBeGreaterThanOrEqual(rssMB() - 1);
    expect(formatMemory(r)).toMatch(/^rss [\d,]+ MB \(peak [\d,]+ MB\)$/);
    const big = new Float64Array(64 * 2 ** 17).fill(1); // 64 MB touched
    expect(peakMemoryMB()).toBeGreaterThan(64);
    expect(big[5]).toBe(1);
    if (resetPeakMemory()) expect(peakMemoryMB()).toBeLessThan(r.peakRssMB + 80);
  });

  test(
    'SLOW: a random 0.5B-parameter Qwen2 checkpoint (BF16, 1 GB) loads in under 6 GB of RAM, and scores',
    async () => {
      const model = join(dir, 'qwen2.5-0.5b-random');
      await mkdir(model);
      await writeFile(join(model, 'config.json'), JSON.stringify(QWEN25_05B, null, 2));
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(QWEN_TOKENIZER_DIR, f), join(model, f));
      const bytes = await writeRandomBf16Safetensors(join(model, 'model.safetensors'), hfTensorShapes(QWEN25_05B), 7);
      expect(bytes).toBeGreaterThan(988_000_000);
      // A child process, so that the peak covers exactly: node + tfjs (wasm) + the load (+ one scoring pass).
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(here, 'load-child.ts'), model, 'wasm', '--score'], {
        cwd: join(here, '..', '..', '..'),
        maxBuffer: 1 << 20,
        env: { ...process.env, EMPO_QUIET: '1' },
      });
      const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, number & number[]>;
      console.log(`0.5B load: ${JSON.stringify(r)}`);
      expect(r.backend).toBe('wasm');
      expect(r.parameters).toBe(494_032_768);
      expect(r.tensorMB).toBeCloseTo((494_032_768 * 4) / 2 ** 20, 0); // float32 weights, one copy
      expect(r.peakAfterLoadMB).toBeLessThan(LIMIT_MB);
      expect(r.peakAfterScoreMB).toBeLessThan(LIMIT_MB);
      // small random weights: nearly uniform over the vocabulary, log p ~ -ln(151936) = -11.93
      for (const lp of r.logprobs) expect(Math.abs(lp + Math.log(151936))).toBeLessThan(0.5);
    },
    240_000,
  );
});
