import * as tf from '@tensorflow/tfjs';
import { adamwStep, sumsOfSquares, wasmKernelsActive, type AdamWConstants } from '@empo/policy';

export interface AdamWOptions {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

/**
 * Adam with decoupled weight decay, written out so that its state (first and second moments,
 * step count) can be saved in a checkpoint and restored exactly.
 */
export class AdamW {
  step = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(readonly params: Map<string, tf.Variable>, public options: AdamWOptions) {
    for (const [name, p] of params) {
      this.m.set(name, tf.variable(tf.zerosLike(p), false));
      this.v.set(name, tf.variable(tf.zerosLike(p), false));
    }
  }

  /**
   * Apply one update from gradients keyed like the parameters, each multiplied by `scale` first (gradient
   * clipping). On wasm, one kernel per parameter (adamwStep: the same float32 operations as the tensor ops
   * below, in one pass); elsewhere the tensor ops.
   */
  apply(grads: ReadonlyMap<string, tf.Tensor>, scale = 1): void {
    this.step += 1;
    const { learningRate: lr, beta1, beta2, epsilon, weightDecay } = this.options;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    const fused: AdamWConstants | null = wasmKernelsActive('fused')
      ? { scale, beta1, oneMinusBeta1: 1 - beta1, beta2, oneMinusBeta2: 1 - beta2, c1, c2, epsilon, lr, decay: weightDecay > 0 ? 1 - lr * weightDecay : 1 }
      : null;
    for (const [name, p] of this.params) {
      const grad = grads.get(name);
      if (!grad) continue;
      tf.tidy(() => {
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        if (fused) {
          const [pNew, mNew, vNew] = adamwStep(p, grad, m, v, fused);
          m.assign(mNew);
          v.assign(vNew);
          p.assign(pNew);
          return;
        }
        const g = tf.mul(grad, scale);
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), epsilon));
        const decayed = weightDecay > 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    }
  }

  /** Moments as named float32 arrays (`exp_avg.<param>`, `exp_avg_sq.<param>`), for saving. */
  stateTensors(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [name, m] of this.m) out.set(`exp_avg.${name}`, m);
    for (const [name, v] of this.v) out.set(`exp_avg_sq.${name}`, v);
    return out;
  }

  /** Restore moments saved by stateTensors(); every parameter must be present with its shape. */
  loadState(step: number, tensors: Map<string, tf.Tensor>, source: string): void {
    for (const [kind, store] of [['exp_avg', this.m], ['exp_avg_sq', this.v]] as const) {
      for (const [name, variable] of store) {
        const t = tensors.get(`${kind}.${name}`);
        if (!t) throw new Error(`${source}: optimizer state has no tensor '${kind}.${name}'`);
        if (t.shape.join(',') !== variable.shape.join(',')) {
          throw new Error(`${source}: optimizer tensor '${kind}.${name}' has shape [${t.shape}], expected [${variable.shape}]`);
        }
        variable.assign(t);
      }
    }
    this.step = step;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}

/**
 * Global L2 norm of a set of gradients: sqrt of the float32 sum, tensor by tensor, of each tensor's float32 sum of
 * squares. On wasm the sums are kernel passes, four tensors at a time (sumsOfSquares, the same bits as the tensor ops).
 */
export function globalNorm(grads: Iterable<tf.Tensor>): number {
  if (wasmKernelsActive('fused')) {
    // float32 adds in tensor order, as tf.add of the scalars would do them (a double add of two float32 values,
    // rounded to float32, is the float32 add)
    let total = 0;
    for (const sum of sumsOfSquares([...grads])) total = Math.fround(total + sum);
    return Math.sqrt(total);
  }
  return tf.tidy(() => {
    let total = tf.scalar(0);
    for (const g of grads) total = tf.add(total, tf.sum(tf.square(g)));
    return Math.sqrt(total.dataSync()[0]!);
  });
}
