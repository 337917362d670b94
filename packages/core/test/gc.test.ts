/**
 * gc.ts: EMPO_HEAP_GROWING_PERCENT is validated, and V8's --heap-growing-percent is set from it unless the command
 * line set it.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { DEFAULT_HEAP_GROWING_PERCENT, parseHeapGrowingPercent, tuneGarbageCollector } from '../src/index.ts';

describe('EMPO_HEAP_GROWING_PERCENT', () => {
  test('unset or empty: the default; an integer percent; 0 = V8 decides', () => {
    expect(parseHeapGrowingPercent(undefined)).toBe(DEFAULT_HEAP_GROWING_PERCENT);
    expect(parseHeapGrowingPercent(' ')).toBe(DEFAULT_HEAP_GROWING_PERCENT);
    expect(parseHeapGrowingPercent('150')).toBe(150);
    expect(parseHeapGrowingPercent('0')).toBe(0);
  });

  test('anything else is an error naming the variable', () => {
    for (const bad of ['-1', '2.5', 'lots', '20000']) expect(() => parseHeapGrowingPercent(bad)).toThrow(/EMPO_HEAP_GROWING_PERCENT.*'/);
  });

  test("the command line's flag wins; otherwise the variable's value is applied", () => {
    expect(tuneGarbageCollector({}, ['--heap-growing-percent=50'])).toBeNull();
    expect(tuneGarbageCollector({}, ['--heap_growing_percent', '50'])).toBeNull();
    expect(tuneGarbageCollector({ EMPO_HEAP_GROWING_PERCENT: '120' }, [])).toBe(120);
    expect(tuneGarbageCollector({}, [])).toBe(DEFAULT_HEAP_GROWING_PERCENT);
  });

  test('the flag set at run time makes full collections rarer', () => {
    // A child with a 256 MB old space (where V8's own factor is small, as in worker threads) keeps ~30 MB alive
    // and churns through objects that live long enough to reach the old space; --trace-gc reports each full
    // collection on stdout.
    const child = `
      const { tuneGarbageCollector } = await import(${JSON.stringify(new URL('../src/gc.ts', import.meta.url).href)});
      tuneGarbageCollector();
      globalThis.keep = Array.from({ length: 300000 }, (_, i) => ({ i, s: 'x' + i }));
      const ring = new Array(200000);
      for (let n = 0; n < 4000000; n++) ring[n % 200000] = { n, a: [n, n + 1] };
    `;
    const fullCollections = (percent: string) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--max-old-space-size=256', '--trace-gc', '--input-type=module', '-e', child], {
        env: { ...process.env, EMPO_HEAP_GROWING_PERCENT: percent },
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      return (r.stdout.match(/Mark-Compact/g) ?? []).length;
    };
    const dynamic = fullCollections('0');
    expect(dynamic).toBeGreaterThan(5);
    expect(fullCollections('300')).toBeLessThan(dynamic / 2);
  });
});
