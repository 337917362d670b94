/**
 * Parquet library benchmark: write and read 100k rollouts of 256 token ids each (the shape
 * of a large sampler output). Measures parquet-wasm (the one the project uses) with zstd and
 * snappy, and parquetjs-lite when it is installed (npm i --no-save parquetjs-lite).
 *   npx tsx bench/parquet.ts [--rows N] [--json]
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { Rng, parquetToTable, rolloutsSpec, tableFromRows, type RolloutRow } from '@empo/core';

const args = process.argv.slice(2);
const rows = Number(args[args.indexOf('--rows') + 1] ?? 0) || 100_000;
const tokens = 256;
const dir = mkdtempSync(join(tmpdir(), 'empo-bench-parquet-'));
const rng = new Rng(0);

function makeRows(): RolloutRow[] {
  return Array.from({ length: rows }, (_, i) => ({
    step: 1, question_id: `q${i >> 3}`, question: 'a=7 b=3*4 a+b=?', sample_index: i & 7, prompt: 'a=7 b=3*4 a+b=?\n',
    completion: '3*4=12 7+12=19 \\boxed{19}',
    prompt_ids: Array.from({ length: 16 }, () => rng.int(64)),
    completion_ids: Array.from({ length: tokens }, () => rng.int(64)),
    logprobs: Array.from({ length: tokens }, () => -rng.next() * 3),
    finished: true,
  }));
}

function time<T>(fn: () => T): [T, number] {
  const start = performance.now();
  const out = fn();
  return [out, (performance.now() - start) / 1000];
}

const data = makeRows();
const results: Record<string, { write_s: number; read_s: number; mb: number }> = {};
const [table, buildSeconds] = time(() => tableFromRows(rolloutsSpec, data));
for (const [name, codec] of [['parquet-wasm zstd', parquet.Compression.ZSTD], ['parquet-wasm snappy', parquet.Compression.SNAPPY]] as const) {
  const path = join(dir, `${name.replace(/ /g, '-')}.parquet`);
  const [, write] = time(() => {
    const props = new parquet.WriterPropertiesBuilder().setCompression(codec).build();
    writeFileSync(path, parquet.writeParquet(parquet.Table.fromIPCStream(arrow.tableToIPC(table, 'stream')), props));
  });
  const [back, read] = time(() => parquetToTable(readFileSync(path), path));
  if (back.numRows !== rows) throw new Error('row count mismatch');
  results[name] = { write_s: write + buildSeconds, read_s: read, mb: statSync(path).size / 2 ** 20 };
}

try {
  const lite = ((await import(/* @vite-ignore */ 'parquetjs-lite' as string)) as any).default;
  const schema = new lite.ParquetSchema({
    question_id: { type: 'UTF8' }, completion: { type: 'UTF8' },
    completion_ids: { type: 'INT32', repeated: true }, logprobs: { type: 'FLOAT', repeated: true },
  });
  const path = join(dir, 'lite.parquet');
  const start = performance.now();
  const writer = await lite.ParquetWriter.openFile(schema, path, { useDataPageV2: false });
  for (const r of data) await writer.appendRow({ question_id: r.question_id, completion: r.completion, completion_ids: r.completion_ids, logprobs: r.logprobs });
  await writer.close();
  const write = (performance.now() - start) / 1000;
  const readStart = performance.now();
  const reader = await lite.ParquetReader.openFile(path);
  const cursor = reader.getCursor();
  let n = 0;
  while (await cursor.next()) n++;
  await reader.close();
  results['parquetjs-lite (4 columns)'] = { write_s: write, read_s: (performance.now() - readStart) / 1000, mb: statSync(path).size / 2 ** 20 };
} catch (error) {
  if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error;
  // parquetjs-lite not installed: parquet-wasm only
}

if (args.includes('--json')) console.log(JSON.stringify({ rows, tokens_per_row: tokens, results }, null, 2));
else for (const [name, r] of Object.entries(results)) console.log(`${name.padEnd(28)} write ${r.write_s.toFixed(2)} s  read ${r.read_s.toFixed(2)} s  ${r.mb.toFixed(1)} MB`);
