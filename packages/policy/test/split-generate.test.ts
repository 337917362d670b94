/**
 * splitGenerate's bookkeeping, with a scripted stand-in for the workers: which tasks it runs, when it asks a
 * running task for rows, how it merges what tasks handed over (nested too), and how a failure ends the call.
 */
import { describe, expect, test } from 'vitest';
import type { GenerateResult, RowHandoff } from '../src/generate.ts';
import { splitGenerate, type HandoffSignal } from '../src/workers/split-generate.ts';

interface Call {
  task: string;
  payload: { handoff?: HandoffSignal; rows?: RowHandoff; prompts?: number[][] };
  onProgress: (value: unknown) => void;
  transfer: ArrayBuffer[];
  resolve: (r: GenerateResult) => void;
  reject: (e: Error) => void;
}

/** A run function that records each task and lets the test finish it. */
function scripted() {
  const calls: Call[] = [];
  const run = (task: string, payload: unknown, onProgress: (value: unknown) => void, transfer: ArrayBuffer[]) =>
    new Promise<GenerateResult>((resolve, reject) => calls.push({ task, payload: payload as Call['payload'], onProgress, transfer, resolve, reject }));
  return { calls, run };
}

/** A handoff of rows `rows` (indices into the handing task's rows); splitGenerate reads `rows` and moves the cache's buffer. */
const handoff = (rows: number[]) => ({ rows, cache: { P: 1, R: 0, data: new Float32Array(rows) } }) as unknown as RowHandoff;
const result = (tokens: number[][], finished: boolean[]): GenerateResult => ({ tokens, logprobs: tokens.map((t) => t.map((x) => -x)), finished });
const prompts = (n: number) => Array.from({ length: n }, (_, i) => [i + 1]);
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
const signalOf = (c: Call) => Atomics.load(new Int32Array(c.payload.handoff!.signal), c.payload.handoff!.slot);

describe('splitGenerate', () => {
  test('merges rows handed over, and handed over again, after the tokens their first task drew', async () => {
    const { calls, run } = scripted();
    const out = splitGenerate(run, 2, prompts(5), [[0, 3], [3, 5]], () => ({ maxNewTokens: 9, temperature: 0 }), 'auto');
    expect(calls.map((c) => [c.task, c.payload.prompts])).toEqual([['generate', [[1], [2], [3]]], ['generate', [[4], [5]]]]);
    const [a, b] = calls as [Call, Call];
    b.resolve(result([[40], [50, 51]], [true, true])); // rows 3, 4 done: a worker is idle, so task a is asked for rows
    await tick();
    expect(signalOf(a)).toBe(1);
    a.onProgress(handoff([1, 2])); // rows 1 and 2 go on in a new task
    const c = calls[2]!;
    expect(c.task).toBe('generate.resume');
    expect(c.payload.rows).toEqual(handoff([1, 2]));
    expect(c.transfer).toHaveLength(1);
    expect(c.transfer[0]).toBe(c.payload.rows!.cache.data.buffer); // the cache moves to the worker, not copied
    expect(calls.slice(0, 2).map((t) => t.transfer)).toEqual([[], []]);
    c.onProgress(handoff([1])); // which hands row 2 on
    const d = calls[3]!;
    a.resolve(result([[10, 11], [20], [30]], [true, false, false]));
    c.resolve(result([[21, 22], [31]], [true, false]));
    d.resolve(result([[32, 33]], [false]));
    const r = await out;
    expect(r.tokens).toEqual([[10, 11], [20, 21, 22], [30, 31, 32, 33], [40], [50, 51]]);
    expect(r.logprobs).toEqual(r.tokens.map((t) => t.map((x) => -x)));
    expect(r.finished).toEqual([true, true, false, true, true]);
  });

  test("'always' asks every task at once, 'off' gives no signal, and no task is asked while every worker is busy", async () => {
    const always = scripted();
    void splitGenerate(always.run, 2, prompts(4), [[0, 2], [2, 4]], () => ({ maxNewTokens: 9, temperature: 0 }), 'always');
    expect(always.calls.map(signalOf)).toEqual([1, 1]);
    always.calls[0]!.onProgress(handoff([1]));
    expect(signalOf(always.calls[2]!)).toBe(1);

    const off = scripted();
    void splitGenerate(off.run, 2, prompts(4), [[0, 2], [2, 4]], () => ({ maxNewTokens: 9, temperature: 0 }), 'off');
    expect(off.calls.map((c) => c.payload.handoff)).toEqual([undefined, undefined]);

    const three = scripted(); // three parts on three workers: when one ends, one other task is asked
    void splitGenerate(three.run, 3, prompts(6), [[0, 2], [2, 4], [4, 6]], () => ({ maxNewTokens: 9, temperature: 0 }), 'auto');
    three.calls[0]!.resolve(result([[1], [2]], [true, true]));
    await tick();
    expect(three.calls.slice(1).map(signalOf)).toEqual([1, 0]);

    const queued = scripted(); // three parts on two workers: the third part takes the worker that fell idle
    void splitGenerate(queued.run, 2, prompts(6), [[0, 2], [2, 4], [4, 6]], () => ({ maxNewTokens: 9, temperature: 0 }), 'auto');
    queued.calls[0]!.resolve(result([[1], [2]], [true, true]));
    await tick();
    expect(queued.calls.slice(1).map(signalOf)).toEqual([0, 0]);
  });

  test('a failing task rejects the call with its error; later results and handoffs are ignored', async () => {
    const { calls, run } = scripted();
    const out = splitGenerate(run, 2, prompts(4), [[0, 2], [2, 4]], () => ({ maxNewTokens: 9, temperature: 0 }), 'auto');
    calls[0]!.onProgress(handoff([1]));
    calls[2]!.reject(new Error('worker: out of memory'));
    await expect(out).rejects.toThrow('worker: out of memory');
    calls[1]!.onProgress(handoff([0]));
    expect(calls).toHaveLength(3); // no task started after the failure
    calls[0]!.resolve(result([[1], [2]], [true, false]));
    calls[1]!.resolve(result([[3], [4]], [true, true]));
  });
});
