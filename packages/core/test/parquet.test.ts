import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  clustersSpec, evalSamplesSpec, labeledQueriesSpec, metricsSpec, queriesSpec, readParquetRows, rolloutsSpec, sftSpec,
  tableFromRows, tableToParquet, writeParquet, type TableSpec,
} from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'empo-parquet-'));

const examples: [TableSpec, Record<string, unknown>[]][] = [
  [queriesSpec, [{ question_id: 'q1', question: 'a=1 b=2+3 a+b=?' }, { question_id: 'q2', question: 'ünïcode ∑ 🙂' }]],
  [labeledQueriesSpec, [{ question_id: 'q1', question: 'x', answer: '\\frac{1}{2}' }]],
  [rolloutsSpec, [
    { step: 3, question_id: 'q1', question: 'x', sample_index: 0, prompt: 'x\n', completion: '1 \\boxed{1}', prompt_ids: [1, 5, 9], completion_ids: [7, 8, 2], logprobs: [-0.5, -1.25, -0.125], finished: true },
    { step: 3, question_id: 'q1', question: 'x', sample_index: 1, prompt: 'x\n', completion: '', prompt_ids: [1, 5, 9], completion_ids: [], logprobs: [], finished: false },
  ]],
  [clustersSpec, [
    { step: 1, question_id: 'q1', sample_index: 0, answer: '1', cluster_id: 0, cluster_size: 2, reward: 0.5, entropy: 0.6931471824645996, keep: true },
    { step: 1, question_id: 'q1', sample_index: 1, answer: null, cluster_id: 1, cluster_size: 1, reward: 0, entropy: 0.6931471824645996, keep: false },
  ]],
  [metricsSpec, [Object.fromEntries(metricsSpec.columns.map((c, i) => [c.name, c.type === 'int32' ? 7 : i + 0.25]))]],
  [evalSamplesSpec, [{ question_id: 'e', question: 'q', reference: '3', sample_index: -1, completion: '\\boxed{3}', answer: '3', correct: true }]],
  [sftSpec, [{ prompt: 'p', completion: 'c' }]],
];

describe('Parquet round trip', () => {
  for (const [spec, rows] of examples) {
    it(`keeps every value of a ${spec.name} table`, () => {
      const path = join(dir, `${spec.name.replace(/ /g, '_')}.parquet`);
      writeParquet(path, spec, rows);
      expect(readParquetRows(path, spec)).toEqual(rows);
    });
  }

  it('leaves no temporary file behind', () => {
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('schema check on read', () => {
  it('rejects a file with a missing column, naming the file and the column', () => {
    const path = join(dir, 'missing.parquet');
    writeParquet(path, queriesSpec, [{ question_id: 'q', question: 'x' }]);
    expect(() => readParquetRows(path, rolloutsSpec)).toThrow(new RegExp(`${path}.*no column 'step'`));
  });

  it('rejects a mistyped column, naming it and both types', () => {
    const spec: TableSpec = { name: 'bad', doc: '', columns: [{ name: 'question_id', type: 'int32', doc: '' }, { name: 'question', type: 'utf8', doc: '' }] };
    const path = join(dir, 'mistyped.parquet');
    writeParquet(path, spec, [{ question_id: 5, question: 'x' }]);
    expect(() => readParquetRows(path, queriesSpec)).toThrow(/mistyped\.parquet: column 'question_id' has type Int32, expected Utf8/);
  });

  it('rejects nulls in a non-nullable column', () => {
    const spec: TableSpec = { name: 'nullable', doc: '', columns: [{ name: 'question_id', type: 'utf8', nullable: true, doc: '' }, { name: 'question', type: 'utf8', doc: '' }] };
    const path = join(dir, 'nulls.parquet');
    writeParquet(path, spec, [{ question_id: null, question: 'x' }]);
    expect(() => readParquetRows(path, queriesSpec)).toThrow(/column 'question_id' has 1 null values/);
  });

  it('rejects a corrupt file and a truncated file with the file name', () => {
    const corrupt = join(dir, 'corrupt.parquet');
    writeFileSync(corrupt, 'this is not parquet at all');
    expect(() => readParquetRows(corrupt, queriesSpec)).toThrow(/corrupt\.parquet: not a readable Parquet file/);
    const good = tableToParquet(tableFromRows(queriesSpec, [{ question_id: 'q', question: 'x' }]));
    const truncated = join(dir, 'truncated.parquet');
    writeFileSync(truncated, good.subarray(0, good.length - 20));
    expect(() => readParquetRows(truncated, queriesSpec)).toThrow(/truncated\.parquet: not a readable Parquet file/);
  });

  it('rejects a missing file with its path', () => {
    expect(() => readParquetRows(join(dir, 'nope.parquet'), queriesSpec)).toThrow(/nope\.parquet: file not found/);
  });

  it('refuses to write a row with a missing value', () => {
    expect(() => writeParquet(join(dir, 'x.parquet'), queriesSpec, [{ question_id: 'q' }])).toThrow(/column 'question' is missing/);
  });

  it('a failed write leaves the existing file untouched', () => {
    const path = join(dir, 'keep.parquet');
    writeParquet(path, queriesSpec, [{ question_id: 'q', question: 'kept' }]);
    const before = readFileSync(path);
    expect(() => writeParquet(path, queriesSpec, [{ question_id: 'q', question: null }])).toThrow();
    expect(readFileSync(path)).toEqual(before);
  });
});
