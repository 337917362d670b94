/**
 * V8's garbage collector, tuned for tensor work: tfjs allocates thousands of short-lived engine objects per
 * training micro-batch (tensors, tape entries, closures), and V8 moves many of them to its old space, whose limit
 * it sets only ~1.35x above the live heap (30-60 MB here): every isolate then ran a full mark-compact about once
 * per EMPO step, with concurrent marking on helper threads. A larger growing factor makes those rare. With worker
 * threads on every core, the helpers' work is taken from the workers (BENCHMARKS.md, tenth round).
 */
import { setFlagsFromString } from 'node:v8';
import { EmpoError } from './errors.ts';

/** Default of EMPO_HEAP_GROWING_PERCENT: the old-space limit after a full collection is 4x the live heap. */
export const DEFAULT_HEAP_GROWING_PERCENT = 300;

/** EMPO_HEAP_GROWING_PERCENT's value: unset or '' = the default, 0 = V8's own dynamic factor, else a percent. */
export function parseHeapGrowingPercent(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return DEFAULT_HEAP_GROWING_PERCENT;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 10_000) {
    throw new EmpoError(`EMPO_HEAP_GROWING_PERCENT: expected an integer percent from 0 (V8's own factor) to 10000, got '${text}'`);
  }
  return n;
}

/**
 * Set V8's heap growing factor (--heap-growing-percent, process-wide: every isolate, worker threads included, reads
 * it at its next collection) from EMPO_HEAP_GROWING_PERCENT, unless the process was started with that flag.
 * Returns the percent applied, or null when the command line's flag was kept.
 */
export function tuneGarbageCollector(env: NodeJS.ProcessEnv = process.env, execArgv: readonly string[] = process.execArgv): number | null {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return null;
  const percent = parseHeapGrowingPercent(env.EMPO_HEAP_GROWING_PERCENT);
  setFlagsFromString(`--heap-growing-percent=${percent}`);
  return percent;
}
