import { existsSync, readFileSync } from 'node:fs';
import { EmpoError, readParquetRows, sftSpec, type SftRow } from '@empo/core';

/** Read (prompt, completion) pairs from Parquet or JSONL; errors name the file and line. */
export function readSftRows(path: string): SftRow[] {
  if (!existsSync(path)) throw new EmpoError(`${path}: file not found (expected SFT pairs as .parquet or .jsonl)`);
  if (path.endsWith('.parquet')) return readParquetRows<SftRow>(path, sftSpec);
  if (!path.endsWith('.jsonl')) throw new EmpoError(`${path}: SFT data must be a .parquet or .jsonl file`);
  const rows: SftRow[] = [];
  readFileSync(path, 'utf8').split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new EmpoError(`${path}:${i + 1}: not valid JSON`);
    }
    const row = value as Partial<SftRow>;
    if (typeof row.prompt !== 'string' || typeof row.completion !== 'string') {
      throw new EmpoError(`${path}:${i + 1}: each line needs string fields 'prompt' and 'completion'`);
    }
    rows.push({ prompt: row.prompt, completion: row.completion });
  });
  return rows;
}
