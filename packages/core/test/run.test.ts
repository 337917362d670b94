import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng, RunLayout, checkpointFiles, stepName, writeFileAtomic, writeFileAtomicAsync, writeFolderAtomic } from '../src/index.ts';

describe('run layout', () => {
  it('counts only complete checkpoints', () => {
    const root = mkdtempSync(join(tmpdir(), 'empo-run-'));
    const layout = new RunLayout(root, 'r', '/base');
    expect(layout.nextStep()).toBe(1);
    expect(layout.modelDir(0)).toBe('/base');
    for (const step of [1, 2]) {
      mkdirSync(layout.checkpointDir(step), { recursive: true });
      for (const f of checkpointFiles) writeFileSync(join(layout.checkpointDir(step), f), 'x');
    }
    mkdirSync(layout.checkpointDir(3), { recursive: true }); // partial: no files
    mkdirSync(join(layout.checkpointsDir, '.step-0004.tmp-1-abc'), { recursive: true });
    expect(layout.checkpointSteps()).toEqual([1, 2]);
    expect(layout.nextStep()).toBe(3);
    expect(stepName(12)).toBe('step-0012');
  });
});

describe('atomic writes', () => {
  it('replaces a folder whole or not at all', async () => {
    const root = mkdtempSync(join(tmpdir(), 'empo-atomic-'));
    const target = join(root, 'ckpt');
    await writeFolderAtomic(target, (tmp) => writeFileSync(join(tmp, 'a'), 'one'));
    await expect(writeFolderAtomic(target, (tmp) => {
      writeFileSync(join(tmp, 'a'), 'two');
      throw new Error('crash while writing');
    })).rejects.toThrow('crash while writing');
    expect(readFileSync(join(target, 'a'), 'utf8')).toBe('one');
    await writeFolderAtomic(target, (tmp) => writeFileSync(join(tmp, 'a'), 'three'));
    expect(readFileSync(join(target, 'a'), 'utf8')).toBe('three');
    expect(readdirSync(root)).toEqual(['ckpt']);
    writeFileAtomic(join(root, 'f.txt'), 'hello');
    expect(readFileSync(join(root, 'f.txt'), 'utf8')).toBe('hello');
  });

  it('writes a file off the calling thread, whole or not at all', async () => {
    const root = mkdtempSync(join(tmpdir(), 'empo-atomic-'));
    await writeFileAtomicAsync(join(root, 'sub', 'f.bin'), new Uint8Array([1, 2, 3]));
    await writeFileAtomicAsync(join(root, 'sub', 'f.bin'), new Uint8Array([4, 5]));
    expect([...readFileSync(join(root, 'sub', 'f.bin'))]).toEqual([4, 5]);
    // A rename that fails (a folder is in the way) rejects, removes the temporary file and leaves the folder alone.
    mkdirSync(join(root, 'sub', 'dir', 'inner'), { recursive: true });
    await expect(writeFileAtomicAsync(join(root, 'sub', 'dir'), 'x')).rejects.toThrow();
    expect(readdirSync(join(root, 'sub')).sort()).toEqual(['dir', 'f.bin']);
    expect(readdirSync(join(root, 'sub', 'dir'))).toEqual(['inner']);
  });
});

describe('Rng', () => {
  it('is reproducible from a seed and from a saved state', () => {
    const a = new Rng(42);
    const first = [a.next(), a.next()];
    expect([new Rng(42).next(), new Rng(42).next()]).toEqual([first[0], first[0]]);
    const state = a.state();
    const x = a.next();
    expect(new Rng(state).next()).toBe(x);
    expect(Rng.derive(1, 'a', 2).next()).toBe(Rng.derive(1, 'a', 2).next());
    expect(Rng.derive(1, 'a', 2).next()).not.toBe(Rng.derive(1, 'a', 3).next());
  });

  it('is roughly uniform', () => {
    const rng = new Rng(7);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 40000; i++) counts[rng.int(4)]!++;
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(400);
  });
});
