import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic.ts';
import { EmpoError } from './errors.ts';

export function readJsonFile(path: string): unknown {
  if (!existsSync(path)) throw new EmpoError(`${path}: file not found`);
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new EmpoError(`${path}: not valid JSON (${(error as Error).message})`);
  }
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}
