/**
 * The benchmark loaders on the public sets in ../shared/datasets (skipped when absent): every benchmark's
 * reference solutions, graded as if a model had written them, score 100%, or each miss is listed with its cause.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeParquet } from '@empo/core';
import {
  BUILT_IN_NAMES, CHOICE_TEMPLATE, MATH_TEMPLATE, checkReferences, gradeItem, loadBenchmark, loadBenchmarks, summarizeBenchmarks,
} from '@empo/evaluator';

const datasets = resolve(__dirname, '../../../../shared/datasets');
const present = existsSync(join(datasets, 'math500', 'test.jsonl'));
if (!present) process.stderr.write(`skipping the shared-dataset benchmark tests: ${datasets} is absent\n`);

const expectedRows: Record<string, number> = {
  math500: 500, gsm8k: 1319, aime24: 30, amc23: 40, minerva_math: 272, olympiadbench: 675, mmlu_stem: 3018,
};

describe.skipIf(!present)('built-in benchmarks (../shared/datasets)', () => {
  const items = present ? loadBenchmarks(BUILT_IN_NAMES, datasets) : [];

  it('loads every benchmark with a reference and a prompt', () => {
    for (const [name, rows] of Object.entries(expectedRows)) {
      const list = items.filter((i) => i.benchmark === name);
      expect(list, name).toHaveLength(rows);
      for (const it of list) {
        expect(it.reference.length, it.question_id).toBeGreaterThan(0);
        expect(it.prompt).toContain(it.question);
        expect(it.prompt).toContain('\\boxed{}');
      }
    }
    const gsm = items.find((i) => i.benchmark === 'gsm8k')!;
    expect(gsm.reference).toBe('18');
    expect(gsm.prompt).toBe(MATH_TEMPLATE.replace('{question}', gsm.question));
    const amc = items.find((i) => i.benchmark === 'amc23')!;
    expect(amc.reference).toBe('27');
    const mmlu = items.find((i) => i.benchmark === 'mmlu_stem')!;
    expect(mmlu).toMatchObject({ mode: 'choice', reference: 'C' });
    expect(mmlu.prompt).toContain('\nA. maintain the population');
    expect(mmlu.prompt).toContain('\nD. increase the mortality rate');
    expect(items.find((i) => i.benchmark === 'math500')!.reference).toBe('\\left( 3, \\frac{\\pi}{2} \\right)');
    expect(items.find((i) => i.benchmark === 'minerva_math')!.reference).toBe('1.6');
    expect(items.find((i) => i.benchmark === 'olympiadbench')!.reference).toBe('2');
  });

  it('scores 100% on the reference solutions (or lists each miss with its cause)', () => {
    const checks = checkReferences(items);
    const lines = checks.map((c) => `${c.benchmark}: ${c.correct}/${c.questions} (${c.fromSolutions} worked solutions)` +
      c.misses.map((m) => `\n  ${m.question_id}: ${m.cause}`).join(''));
    process.stderr.write(`reference check:\n${lines.join('\n')}\n`);
    for (const c of checks) {
      for (const m of c.misses) expect(m.cause.length).toBeGreaterThan(0);
      expect(c.accuracy, lines.join('\n')).toBe(1);
    }
    // The worked solutions are used where a benchmark has them.
    const from = Object.fromEntries(checks.map((c) => [c.benchmark, c.fromSolutions]));
    expect(from).toMatchObject({ math500: 500, gsm8k: 1319, aime24: 30, minerva_math: 272 });
    // The boxed references alone also round-trip.
    for (const c of checkReferences(items, false)) expect(c.accuracy, c.benchmark).toBe(1);
  });

  it('grades and summarizes per benchmark and averaged', () => {
    const pick = ['gsm8k', 'mmlu_stem'].flatMap((b) => items.filter((i) => i.benchmark === b).slice(0, 4));
    const rows = pick.flatMap((it, n) => gradeItem(it, [
      `\\boxed{${n % 2 ? it.reference : 'nope'}}`, `\\boxed{${it.reference}}`, 'no answer', `\\boxed{${it.reference}}`,
    ]));
    const s = summarizeBenchmarks(3, 'm', rows);
    expect(Object.keys(s.benchmarks)).toEqual(['gsm8k', 'mmlu_stem']);
    expect(s.benchmarks.gsm8k!.greedy_accuracy).toBe(0.5);
    expect(s.benchmarks.gsm8k!.mean_accuracy).toBeCloseTo(2 / 3);
    expect(s.benchmarks.gsm8k!.maj_accuracy).toBe(1);
    expect(s.benchmarks.gsm8k!.pass_at_k).toBe(1);
    expect(s.greedy_accuracy).toBe(0.5);
    expect(s.questions).toBe(8);
  });
});

describe('custom benchmark files', () => {
  it('reads JSONL and Parquet with configured fields, math and multiple choice', () => {
    const dir = mkdtempSync(join(tmpdir(), 'empo-bench-'));
    try {
      writeFileSync(join(dir, 'q.jsonl'), [
        JSON.stringify({ prob: 'What is 2+3?', sol: 'So it is \\boxed{5}.' }),
        JSON.stringify({ prob: 'What is 10/4?', sol: '5/2' }),
      ].join('\n') + '\n');
      const math = loadBenchmark({ name: 'mine', path: join(dir, 'q.jsonl'), question_field: 'prob', answer_field: 'sol' }, dir);
      expect(math.map((i) => i.reference)).toEqual(['5', '5/2']);
      expect(math[0]!.question_id).toBe('mine/0');
      expect(checkReferences(math, false)[0]!.accuracy).toBe(1);
      expect(gradeItem(math[1]!, ['\\boxed{2.5}'])[0]!.correct).toBe(true);

      writeFileSync(join(dir, 'mc.jsonl'), JSON.stringify({ q: 'Pick two', opts: ['one', 'two'], a: 1 }) + '\n');
      const mc = loadBenchmark({ name: 'mc', path: join(dir, 'mc.jsonl'), question_field: 'q', answer_field: 'a', choices_field: 'opts' }, dir);
      expect(mc[0]).toMatchObject({ mode: 'choice', reference: 'B', choices: ['one', 'two'] });
      expect(mc[0]!.prompt).toBe(CHOICE_TEMPLATE.replace('{question}', 'Pick two').replace('{choices}', 'A. one\nB. two'));
      expect(gradeItem(mc[0]!, ['\\boxed{B}', '\\boxed{A}']).map((r) => r.correct)).toEqual([true, false]);

      writeParquet(join(dir, 'q.parquet'), {
        name: 'x', doc: '', columns: [{ name: 'question', type: 'utf8', doc: '' }, { name: 'answer', type: 'utf8', doc: '' }],
      }, [{ question: '1+1?', answer: '2' }]);
      const pq = loadBenchmark({ name: 'pq', path: join(dir, 'q.parquet'), template: 'Q: {question}\nA:' }, dir);
      expect(pq[0]).toMatchObject({ reference: '2', prompt: 'Q: 1+1?\nA:' });

      expect(() => loadBenchmark('nosuch', dir)).toThrow(/not a built-in benchmark/);
      expect(() => loadBenchmark({ name: 'x', path: join(dir, 'q.jsonl'), question_field: 'missing' }, dir)).toThrow(/no field 'missing'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
