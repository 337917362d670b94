/**
 * One generate call spread over the workers, with rows handed over at the end (`PolicyWorkers.generate`).
 *
 * The rows are cut into one contiguous part per worker. The parts rarely end together (their completions have
 * different lengths, and two threads run at different speeds), so when a worker falls idle while another part
 * is still decoding, that part is asked (through a shared signal slot, polled between token steps) to hand the
 * second half of its running rows over: their sampling state and KV cache go to the idle worker, which decodes
 * them on (`resumeGenerate`), and can be asked for rows in turn. Every row computes the same values whatever
 * batch it is in, so the tokens and log-probs are those of one generate call, whatever was handed over.
 */
import type { GenerateOptions, GenerateResult, RowHandoff } from '../generate.ts';

/**
 * When rows are handed over: `auto` (default) when a worker is idle while a part still decodes; `always` (for
 * tests) every task at its first chance, so that rows move between tasks and threads whatever the timing;
 * `off` never.
 */
export type HandoffMode = 'auto' | 'always' | 'off';

/** Where a task polls for a handover request: slot `slot` of `signal` (Int32 values), set to 1 to ask. */
export interface HandoffSignal {
  signal: SharedArrayBuffer;
  slot: number;
}

/** Run a task on a worker; the buffers in `transfer` move with its payload instead of being copied. */
type RunTask = (task: string, payload: unknown, onProgress: (value: unknown) => void, transfer: ArrayBuffer[]) => Promise<GenerateResult>;

/** One task of the call: a part of the rows, or rows that another task handed over. */
interface Task {
  /** The call's row index of each of the task's rows. */
  rows: number[];
  /** Its rows not handed over yet (some may have finished: the task itself knows). */
  running: number;
  slot: number;
  done: boolean;
  result?: GenerateResult;
  /** Tasks that took over rows of this one, in the order they were handed over. */
  children: Task[];
}

/**
 * Generate `prompts` as the tasks `run` runs on `workers` threads: one 'generate' task per range of `parts`
 * (with `optsFor(range)`), plus 'generate.resume' tasks for rows handed over. Returns one result in prompt order.
 */
export function splitGenerate(
  run: RunTask,
  workers: number,
  prompts: number[][],
  parts: [number, number][],
  optsFor: (range: [number, number]) => GenerateOptions,
  mode: HandoffMode,
): Promise<GenerateResult> {
  const n = prompts.length;
  // A handover halves a task's running rows, so a call makes fewer than 2n tasks.
  const signal = new Int32Array(new SharedArrayBuffer(4 * (parts.length + 2 * n)));
  const tasks: Task[] = [];
  const roots: Task[] = [];
  let unfinished = 0;
  return new Promise<GenerateResult>((resolve, reject) => {
    let failed = false;
    const launch = (task: Task, name: string, payload: object, transfer: ArrayBuffer[] = []) => {
      task.slot = tasks.length;
      tasks.push(task);
      unfinished++;
      if (mode === 'always') Atomics.store(signal, task.slot, 1);
      const handoff: HandoffSignal | undefined = mode === 'off' ? undefined : { signal: signal.buffer as SharedArrayBuffer, slot: task.slot };
      const onRows = (value: unknown) => {
        if (failed) return;
        const h = value as RowHandoff;
        const child: Task = { rows: h.rows.map((j) => task.rows[j]!), running: h.rows.length, slot: -1, done: false, children: [] };
        task.running -= h.rows.length;
        task.children.push(child);
        // the rows' cache came from the handing worker as a buffer of its own: it moves on (megabytes, on the
        // path of the idle worker that waits for it) instead of being copied
        launch(child, 'generate.resume', { rows: h }, [h.cache.data.buffer as ArrayBuffer]);
      };
      run(name, { ...payload, handoff }, onRows, transfer).then(
        (result) => {
          task.result = result;
          task.done = true;
          unfinished--;
          if (failed) return;
          if (unfinished === 0) resolve(merge(n, roots));
          else if (mode === 'auto') askForRows();
        },
        (e: Error) => {
          if (!failed) reject(e);
          failed = true;
        },
      );
    };
    /** Ask as many running tasks as there are idle workers (those with the most rows first) for rows. */
    const askForRows = () => {
      const running = tasks.filter((t) => !t.done).sort((a, b) => b.running - a.running);
      let idle = workers - running.length;
      for (const t of running) {
        if (idle <= 0) break;
        if (t.running < 2) continue;
        Atomics.store(signal, t.slot, 1);
        idle--;
      }
    };
    for (const range of parts) {
      const task: Task = { rows: rowsOf(range), running: range[1] - range[0], slot: -1, done: false, children: [] };
      roots.push(task);
      launch(task, 'generate', { prompts: prompts.slice(range[0], range[1]), opts: optsFor(range) });
    }
  });
}

function rowsOf([a, b]: [number, number]): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}

/** Each row's tokens in the order its tasks decoded them: a task's own, then its children's (depth first). */
function merge(n: number, roots: Task[]): GenerateResult {
  const out: GenerateResult = { tokens: Array.from({ length: n }, () => []), logprobs: Array.from({ length: n }, () => []), finished: new Array<boolean>(n).fill(false) };
  const add = (task: Task) => {
    const r = task.result!;
    task.rows.forEach((row, j) => {
      out.tokens[row]!.push(...r.tokens[j]!);
      out.logprobs[row]!.push(...r.logprobs[j]!);
      out.finished[row] = r.finished[j]!;
    });
    task.children.forEach(add);
  };
  roots.forEach(add);
  return out;
}
