/**
 * `empo results` (the paper's table in miniature) on a throwaway workspace: it writes the table, reuses finished
 * runs on a second call and says so (log and the file's header), and `--fresh` recomputes them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labeledQueriesSpec, queriesSpec, sftSpec, writeParquet } from '@empo/core';
import { sampleProblems } from '@empo/tasks';
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

  it('evaluates again when the evaluation set changed, and refuses runs made from other data until --fresh', async () => {
    const { dir, config } = await makeTinyWorkspace();
    const configPath = join(dir, 'config.json');
    writeFileSync(configPath, JSON.stringify(config));
    // The supervised baselines' files, beside train.parquet (SFT holds 64 pairs out, so it needs more than that).
    const writeGold = (seed: number) => writeParquet(join(dir, 'sft-gold.parquet'), sftSpec,
      sampleProblems('pretrain', 80, seed).map((p) => ({ prompt: `${p.question}\n`, completion: p.solution })));
    writeGold(3);
    writeParquet(join(dir, 'train-labeled.parquet'), labeledQueriesSpec, sampleProblems('pretrain', 12, 5).map((p, i) => ({ question_id: `t${i}`, question: p.question, answer: String(p.answer) })));
    const results = (...extra: string[]) => spawnSync(process.execPath, [bin, 'results', '--config', configPath, '--methods', 'base,sft,random',
      '--seeds', '1', '--steps', '1', '--jobs', '2', '--out', join(dir, 'RESULTS.md'), ...extra], { encoding: 'utf8', timeout: 240_000 });
    expect(results().status).toBe(0);

    writeParquet(config.eval_queries, labeledQueriesSpec, sampleProblems('heldout', 6, 8).map((p, i) => ({ question_id: `e${i}`, question: p.question, answer: String(p.answer) })));
    const again = results();
    expect(again.status, again.stderr).toBe(0);
    for (const run of ['base', 'sft', 'random']) expect(again.stderr).toMatch(new RegExp(`results-${run}-s1 done`)); // evaluated again, not reused
    // ... from models the first call trained, which the log and the file say (the base model is nobody's training)
    for (const run of ['sft', 'random']) expect(again.stderr).toMatch(new RegExp(`results-${run}-s1 done \\(evaluated now; trained by an earlier command\\)`));
    expect(again.stderr).toMatch(/results-base-s1 done \(\d+s\)/);
    expect(readFileSync(join(dir, 'RESULTS.md'), 'utf8')).toMatch(/; 2 of 3 runs trained by an earlier command and evaluated again, --fresh retrains them\)/);

    writeGold(4);
    const sft = results();
    expect(sft.status).toBe(2);
    expect(sft.stderr).toMatch(/results-sft-s1: .*sft_log\.json was trained from other gold solutions .*; --fresh recomputes it/);
    writeGold(3);
    writeParquet(config.train_queries, queriesSpec, sampleProblems('heldout', 12, 9).map((p, i) => ({ question_id: `n${i}`, question: p.question })));
    const rl = results();
    expect(rl.status).not.toBe(0);
    expect(rl.stderr).toMatch(/run 'results-random-s1' was trained from other inputs: train_queries/);
    expect(results('--fresh').status).toBe(0);
  }, 300_000);
});
