/**
 * The parent's share of a parallel update: the micro-batch gradients that workers wrote into shared buffers,
 * summed per weight in micro-batch order, ((g0 + g1) + g2) + ..., with tf.add: the same float32 adds, in the same
 * order, as policyUpdate's accumulation, so any number of workers gives the same bits. Each gradient is added
 * once every gradient before it is in, from the moment `startAdding` is called: policyUpdateParallel calls it
 * when a worker has no task left, so the adding runs on that free core while the last micro-batches are computed,
 * and takes no core from a worker before (as it did when gradients were added as they arrived, 5-10 ms a step).
 */
import * as tf from '@tensorflow/tfjs';
import type { Policy } from '@empo/policy';
import type { GradientResult } from './worker-tasks.ts';

export class OrderedGradientSum {
  private readonly arrived: (GradientResult | undefined)[];
  private readonly offsets = new Map<string, number>();
  private names: string[] | null = null;
  private sum: Map<string, tf.Tensor> | null = null;
  /** Index of the next gradient to add. */
  private next = 0;
  private adding: boolean;
  private disposed = false;

  /** With `adding` false, gradients wait until `startAdding` (or `take`); true adds each as soon as it can be. */
  constructor(private readonly weights: ReadonlyMap<string, tf.Tensor>, readonly count: number, { adding = true } = {}) {
    this.arrived = new Array<GradientResult | undefined>(count);
    this.adding = adding;
  }

  /**
   * Micro-batch `index`'s gradient, in any order. Once adding has started, adds it, and any that waited for it, to
   * the sum. Its buffer must stay unchanged until then (it is read when added, not copied on arrival).
   */
  add(index: number, result: GradientResult): void {
    if (this.disposed) return; // a task that finished after another one failed
    if (!Number.isInteger(index) || index < 0 || index >= this.count) throw new Error(`OrderedGradientSum: micro-batch ${index} out of 0..${this.count - 1}`);
    if (index < this.next || this.arrived[index]) throw new Error(`OrderedGradientSum: micro-batch ${index} added twice`);
    this.arrived[index] = result;
    if (this.adding) this.addWaiting();
  }

  /** Add the gradients that arrived (those in order), and each later one as it arrives. */
  startAdding(): void {
    this.adding = true;
    if (!this.disposed) this.addWaiting();
  }

  private addWaiting(): void {
    while (this.next < this.count && this.arrived[this.next]) {
      this.addInOrder(this.arrived[this.next]!);
      this.arrived[this.next++] = undefined;
    }
  }

  /** The summed gradients, keyed by weight name (the caller disposes them). Every micro-batch must have arrived. */
  take(): Map<string, tf.Tensor> {
    if (!this.disposed) this.startAdding();
    if (this.disposed || this.next < this.count || !this.sum) throw new Error(`OrderedGradientSum: ${this.next} of ${this.count} micro-batch gradients added`);
    const sum = this.sum;
    this.sum = null;
    return sum;
  }

  /** Drop what was summed and ignore later gradients (after a failed task). */
  dispose(): void {
    this.disposed = true;
    if (this.sum) tf.dispose([...this.sum.values()]);
    this.sum = null;
  }

  private addInOrder(r: GradientResult): void {
    if (!this.names) {
      this.names = r.names;
      let offset = 0;
      for (const name of r.names) {
        this.offsets.set(name, offset);
        const w = this.weights.get(name);
        if (!w) throw new Error(`policyUpdateParallel: a worker sent a gradient for ${name}, which the policy does not have`);
        offset += w.size;
      }
      for (const name of this.weights.keys()) if (!this.offsets.has(name)) throw new Error(`policyUpdateParallel: no gradient for ${name}`);
    } else if (r.names.join() !== this.names.join()) {
      throw new Error('policyUpdateParallel: workers disagree on the weight order');
    }
    const first = this.sum === null;
    const sum = this.sum ?? new Map<string, tf.Tensor>();
    for (const [name, v] of this.weights) {
      const at = this.offsets.get(name)!;
      const g = tf.tensor(r.grads.subarray(at, at + v.size), v.shape, 'float32');
      if (first) {
        sum.set(name, g);
      } else {
        const previous = sum.get(name)!;
        sum.set(name, tf.add(previous, g));
        tf.dispose([previous, g]);
      }
    }
    this.sum = sum;
  }
}

/** The gradients of `results` (micro-batches 0, 1, ... in order) summed at once; see OrderedGradientSum. */
export function sumGradients(policy: Policy, results: readonly GradientResult[]): Map<string, tf.Tensor> {
  const sum = new OrderedGradientSum(policy.weights, results.length);
  results.forEach((r, i) => sum.add(i, r));
  return sum.take();
}
