import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeConfig, loadConfig, parseConfig } from '../src/index.ts';

describe('config', () => {
  it('has working defaults', () => {
    const config = parseConfig({});
    expect(config.run).toBe('default');
    expect(config.sampler.num_generations).toBe(8);
    expect(config.clusterer.reward).toBe('empo');
    expect(config.trainer.epsilon).toBe(0.2);
  });

  it('names an unknown key, also a nested one', () => {
    expect(() => parseConfig({ nope: 1 })).toThrow(/unknown config key 'nope'/);
    expect(() => parseConfig({ trainer: { lr: 1 } })).toThrow(/unknown config key 'trainer\.lr'/);
  });

  it('names a key with a wrong type', () => {
    expect(() => parseConfig({ sampler: { num_generations: 'eight' } })).toThrow(/config key 'sampler\.num_generations'.*expected number/);
    expect(() => parseConfig({ sampler: { num_generations: 1 } })).toThrow(/sampler\.num_generations/);
    expect(() => parseConfig({ run: '../escape' })).toThrow(/config key 'run'/);
  });

  it('reads JSON and YAML files, then applies --set overrides', () => {
    const dir = mkdtempSync(join(tmpdir(), 'empo-config-'));
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ seed: 3, trainer: { learning_rate: 0.001 } }));
    writeFileSync(join(dir, 'b.yaml'), 'seed: 4\nsampler:\n  num_generations: 4\n');
    expect(loadConfig({ file: join(dir, 'a.json') }).trainer.learning_rate).toBe(0.001);
    const c = loadConfig({ file: join(dir, 'b.yaml'), overrides: ['seed=9', 'clusterer.reward=majority', 'run=x'] });
    expect([c.seed, c.sampler.num_generations, c.clusterer.reward, c.run]).toEqual([9, 4, 'majority', 'x']);
  });

  it('finds empo.config.json in the working directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'empo-config-'));
    writeFileSync(join(dir, 'empo.config.json'), JSON.stringify({ seed: 11 }));
    expect(loadConfig({ cwd: dir }).seed).toBe(11);
  });

  it('reports a bad file and a bad override clearly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'empo-config-'));
    writeFileSync(join(dir, 'bad.json'), '{ not json');
    expect(() => loadConfig({ file: join(dir, 'bad.json') })).toThrow(/bad\.json: cannot parse config/);
    expect(() => loadConfig({ file: join(dir, 'absent.json') })).toThrow(/absent\.json: config file not found/);
    expect(() => loadConfig({ cwd: dir, overrides: ['seed'] })).toThrow(/expected KEY=VALUE/);
    expect(() => loadConfig({ cwd: dir, overrides: ['seed=abc'] })).toThrow(/'seed'/);
  });

  it('documents every key', () => {
    const rows = describeConfig();
    expect(rows.map((r) => r.key)).toContain('trainer.learning_rate');
    expect(rows.every((r) => r.doc.length > 0)).toBe(true);
  });
});
