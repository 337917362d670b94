/**
 * A PolicyWorkers task module for bench/contention.ts: `heap`, the worker's live JS heap in MB after a full
 * collection (null without --expose-gc); `matmul`, a loop of one [64, 128] @ [128, 512] product (a decoding MLP
 * projection) repeated `n` times: compute with almost no JavaScript around it.
 */
import * as tf from '@tensorflow/tfjs';
import { batchMatMul } from '@empo/policy';

export const tasks = {
  heap: (): number | null => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) return null;
    gc();
    return process.memoryUsage().heapUsed / 2 ** 20;
  },
  matmul: (_model: unknown, n: number): void => {
    const [a, b] = [tf.randomNormal([64, 128], 0, 1, 'float32', 1), tf.randomNormal([128, 512], 0, 1, 'float32', 2)] as tf.Tensor2D[];
    for (let i = 0; i < n; i++) batchMatMul(a!, b!).dispose();
    tf.dispose([a!, b!]);
  },
};
