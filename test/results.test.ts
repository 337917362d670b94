/**
 * `empo results` (the paper's table in miniature) on a throwaway workspace: it writes the table, reuses finished
 * runs on a second call and says so (log and the file's header), and `--fresh` recomputes them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTinyWorkspace } from './helpers.ts';

const bin = resolve(import.meta.dirname, '../packages/cli/bin/empo.mjs');

describe('empo results', () => {
  it('writes the table, reuses finished runs (and says so), and recomputes them with --fresh', async () => {
    const { dir, config } = await makeTinyWorkspace();
    const configPath = join(dir, 'config.json');
    writeFileSync(configPath, JSON.stringify(config));
    const out = join(dir, 'RESULTS.md');
    const results = (...extra: string[]) => {
      const r = spawnSync(process.execPath, [bin, 'results', '--config', configPath, '--methods', 'base,random', '--seeds', '1', '--steps', '1',
        '--jobs', '2', '--out', out, ...extra], { encoding: 'utf8', timeout: 240_000 });
      expect(r.status, r.stderr).toBe(0);
      return { stderr: r.stderr, file: readFileSync(out, 'utf8') };
    };

    const first = results();
    expect(first.file).toMatch(/\| the untouched base model \| no \| \d+\.\d ± 0\.0 \|/);
    expect(first.file).toMatch(/\| random reward, no labels \| no \|/);
    expect(first.file).not.toMatch(/reused/);
    expect(existsSync(join(config.runs_dir, 'results-random-s1', 'checkpoints', 'step-0001'))).toBe(true);

    writeFileSync(out, `${first.file}\n<!-- notes: everything below this line is kept when \`empo results\` rewrites the file -->\n## Reading it\nhand-written\n`);
    const second = results();
    expect(second.file).toMatch(/\n## Reading it\nhand-written\n$/);
    expect(second.stderr).toMatch(/results-base-s1 reused from an earlier command/);
    expect(second.stderr).toMatch(/results-random-s1 reused from an earlier command/);
    expect(second.file).toMatch(/2 of 2 runs reused from an earlier command, --fresh recomputes them/);
    expect(second.file.split('## Change')[0]!.split('\n').filter((l) => l.startsWith('|'))).toEqual(first.file.split('## Change')[0]!.split('\n').filter((l) => l.startsWith('|')));

    const third = results('--fresh');
    expect(third.stderr).toMatch(/--fresh: removed 2 earlier run folder\(s\): results-base-s1, results-random-s1/);
    expect(third.stderr).toMatch(/results-random-s1 done/);
    expect(third.file).not.toMatch(/reused/);
  }, 300_000);
});
