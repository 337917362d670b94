/**
 * Reading the shared benchmark sets (read-only, never copied into the repository):
 * <repo>/../shared/datasets, resolved from this file (<repo>/packages/grader/test).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const datasetsDir = join(repoRoot, '..', 'shared', 'datasets');

export function datasetPath(name: string): string {
  return join(datasetsDir, name, 'test.jsonl');
}

export function hasDataset(name: string): boolean {
  return existsSync(datasetPath(name));
}

export function readDataset<T = Record<string, unknown>>(name: string): T[] {
  return readFileSync(datasetPath(name), 'utf8')
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line) => JSON.parse(line) as T);
}
