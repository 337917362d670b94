/** A PolicyWorkers task module for bench/contention.ts: the worker's live JS heap in MB after a full collection (null without --expose-gc). */
export const tasks = {
  heap: (): number | null => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) return null;
    gc();
    return process.memoryUsage().heapUsed / 2 ** 20;
  },
};
