/**
 * Per-thread CPU accounting for the benchmarks (Linux): how much CPU time this process's threads used between two
 * snapshots, and how long each waited on a run queue for a core (/proc/self/task/<tid>/schedstat: nanoseconds on a
 * CPU, nanoseconds runnable but waiting, timeslices). The threads are split into this thread (the parent), the
 * PolicyWorkers threads (by `PolicyWorkers.osThreadIds`), and the rest: V8's background threads (optimizing
 * compilers of every isolate, garbage-collector helpers) and libuv's pool. On two cores, the rest runs on the cores
 * the workers need, and shows up as their waiting time.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Thread id -> [CPU ms, run-queue wait ms] since the thread started. */
export type ThreadTimes = Map<number, [number, number]>;

/** A snapshot of every thread's times, or null where /proc/self/task/<tid>/schedstat does not exist. */
export function threadTimes(): ThreadTimes | null {
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return null;
  }
  const threads = new Map<number, [number, number]>();
  for (const tid of tids) {
    try {
      const [cpu, wait] = readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      if (Number.isFinite(cpu) && Number.isFinite(wait)) threads.set(Number(tid), [cpu! / 1e6, wait! / 1e6]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return threads.size > 0 ? threads : null;
}

export interface ThreadSplit {
  /** This thread's CPU seconds. */
  main_cpu_s: number;
  /** CPU seconds of each worker thread, in worker order. */
  worker_cpu_s: number[];
  /** Seconds each worker thread was runnable but waited for a core, in worker order. */
  worker_wait_s: number[];
  /** CPU seconds of every other thread of the process (V8's compilers and GC helpers, libuv's pool). */
  background_cpu_s: number;
}

/** What happened between two snapshots, split by thread kind; null without snapshots or without worker ids. */
export function splitThreadTimes(before: ThreadTimes | null, after: ThreadTimes | null, workerTids: readonly (number | null)[]): ThreadSplit | null {
  if (!before || !after || workerTids.some((t) => t === null)) return null;
  const delta = (tid: number): [number, number] => {
    const [c1, w1] = after.get(tid) ?? [0, 0];
    const [c0, w0] = before.get(tid) ?? [0, 0]; // a thread started in between counts from zero
    return [(c1 - c0) / 1000, (w1 - w0) / 1000];
  };
  const main = process.pid; // the main thread's id is the process id
  const workers = workerTids as number[];
  const known = new Set([main, ...workers]);
  let background = 0;
  for (const tid of after.keys()) if (!known.has(tid)) background += delta(tid)[0];
  return {
    main_cpu_s: delta(main)[0],
    worker_cpu_s: workers.map((t) => delta(t)[0]),
    worker_wait_s: workers.map((t) => delta(t)[1]),
    background_cpu_s: background,
  };
}
