/**
 * Fused forward kernels for the wasm backend: RMSNorm and rotary embeddings in one pass each, instead of 6 tfjs
 * ops (square, mean, add, rsqrt, mul, mul) and 6 (reshape, matmul, reshape, mul, mul, add). Decoding runs them
 * 9 and 8 times per token step on small tensors, where every tfjs op costs ~10-20 us of dispatch; in training
 * they save passes over the activations. The model keeps its hand-written gradients (plain tfjs ops); other
 * backends use the plain ops for the forward too.
 */
import * as tf from '@tensorflow/tfjs';
import { registerWasmKernel, wasmKernelsActive, WasmKernelModule, once, type WasmBackendLike, type WasmFunction } from './runtime.ts';
import { Code, F32, I32, V128 } from './wasm-asm.ts';

/**
 * rmsNorm(x, w, out, N, D, eps): out[n] = x[n] * (1 / sqrt(mean(x[n]^2) + eps)) * w. The sum of squares runs in
 * four lanes (lane l: d = l mod 4), then ((l0 + l1) + (l2 + l3)), then the D mod 4 last terms, for every row.
 */
function rmsNormCode(): Code {
  const f = new Code([I32, I32, I32, I32, I32, F32]);
  const [x, w, out, N, D, eps] = [0, 1, 2, 3, 4, 5];
  const [n, d, px, po, D4] = Array.from({ length: 5 }, () => f.local(I32));
  const acc = f.local(V128);
  const rs = f.local(V128);
  const [sum, r, xv] = [f.local(F32), f.local(F32), f.local(F32)];
  f.get(D).i32(2).shl().set(D4);
  f.get(x).set(px).get(out).set(po);
  f.i32(0).set(n);
  f.while(() => f.get(n).get(N).ltU(), () => {
    f.v128Zero().set(acc);
    f.i32(0).set(d);
    f.while(() => f.get(d).i32(4).add().get(D).leU(), () => {
      f.get(acc).get(px).get(d).i32(2).shl().add().v128Load().set(rs);
      f.get(rs).get(rs).f32x4Mul().f32x4Add().set(acc);
      f.inc(d, 4);
    });
    f.get(acc).f32x4ExtractLane(0).get(acc).f32x4ExtractLane(1).f32Add();
    f.get(acc).f32x4ExtractLane(2).get(acc).f32x4ExtractLane(3).f32Add().f32Add().set(sum);
    f.while(() => f.get(d).get(D).ltU(), () => {
      f.get(px).get(d).i32(2).shl().add().f32Load().set(xv);
      f.get(sum).get(xv).get(xv).f32Mul().f32Add().set(sum);
      f.inc(d, 1);
    });
    // r = 1 / sqrt(sum / D + eps)
    f.f32One().get(sum).get(D).f32FromU32().f32Div().get(eps).f32Add().f32Sqrt().f32Div().set(r);
    f.get(r).f32x4Splat().set(rs);
    f.i32(0).set(d);
    f.while(() => f.get(d).i32(4).add().get(D).leU(), () => {
      f.get(po).get(d).i32(2).shl().add();
      f.get(px).get(d).i32(2).shl().add().v128Load().get(rs).f32x4Mul();
      f.get(w).get(d).i32(2).shl().add().v128Load().f32x4Mul().v128Store();
      f.inc(d, 4);
    });
    f.while(() => f.get(d).get(D).ltU(), () => {
      f.get(po).get(d).i32(2).shl().add();
      f.get(px).get(d).i32(2).shl().add().f32Load().get(r).f32Mul();
      f.get(w).get(d).i32(2).shl().add().f32Load().f32Mul().f32Store();
      f.inc(d, 1);
    });
    f.inc(px, () => f.get(D4)).inc(po, () => f.get(D4)).inc(n, 1);
  });
  return f;
}

/**
 * rope(x, cos, sin, out, B, T, H, hd, perBatch, scale): x, out [B, T, H, hd]; cos, sin [B or 1, T, 1, hd].
 * out = (x * cos + rotate_half(x) * sin) * scale, rotate_half([x1, x2]) = [-x2, x1]. hd must be a multiple of 8.
 */
function ropeCode(): Code {
  const f = new Code([I32, I32, I32, I32, I32, I32, I32, I32, I32, F32]);
  const [x, cos, sin, out, B, T, H, hd, perBatch, scale] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const [b, t, h, j, px, po, pc, ps, half4, hd4] = Array.from({ length: 10 }, () => f.local(I32));
  const sc = f.local(V128);
  f.get(hd).i32(2).shl().set(hd4);
  f.get(hd4).i32(1).shrU().set(half4);
  f.get(scale).f32x4Splat().set(sc);
  f.get(x).set(px).get(out).set(po);
  /** out[j..j+3] = (x[j..] * cos + rot * sin) * scale, with rot from x at byte offset `rotOffset` (negated or not). */
  const quad = (negate: boolean) => {
    f.get(po).get(j).add();
    f.get(px).get(j).add().v128Load().get(pc).get(j).add().v128Load().f32x4Mul();
    f.get(px).get(j).add();
    if (negate) f.get(half4).add().v128Load().f32x4Neg();
    else f.get(half4).sub().v128Load();
    f.get(ps).get(j).add().v128Load().f32x4Mul().f32x4Add();
    f.get(sc).f32x4Mul().v128Store();
  };
  f.i32(0).set(b);
  f.while(() => f.get(b).get(B).ltU(), () => {
    f.i32(0).set(t);
    f.while(() => f.get(t).get(T).ltU(), () => {
      // the tables' row for (b, t): ((perBatch ? b : 0) * T + t) * hd floats
      f.get(b).get(perBatch).mul().get(T).mul().get(t).add().get(hd4).mul().set(pc);
      f.get(sin).get(pc).add().set(ps);
      f.get(cos).get(pc).add().set(pc);
      f.i32(0).set(h);
      f.while(() => f.get(h).get(H).ltU(), () => {
        f.i32(0).set(j); // j in bytes
        f.while(() => f.get(j).get(half4).ltU(), () => (quad(true), f.inc(j, 16)));
        f.while(() => f.get(j).get(hd4).ltU(), () => (quad(false), f.inc(j, 16)));
        f.inc(px, () => f.get(hd4)).inc(po, () => f.get(hd4)).inc(h, 1);
      });
      f.inc(t, 1);
    });
    f.inc(b, 1);
  });
  return f;
}

const kernels = new WasmKernelModule(() => [{ name: 'rmsNorm', code: rmsNormCode() }, { name: 'rope', code: ropeCode() }]);

/** The fused kernels' functions on `be` (rmsNorm, rope), for callers that bypass the engine. */
export function fusedKernelsFor(be: WasmBackendLike): Record<string, WasmFunction> {
  return kernels.exportsFor(be);
}

const register = once((): void => {
  registerWasmKernel('EmpoRmsNorm', (inputs, be, attrs) => {
    const { x, w } = inputs as { x: tf.TensorInfo; w: tf.TensorInfo };
    const [N, D] = x.shape as [number, number];
    const out = be.makeOutput([N, D], 'float32');
    kernels.exportsFor(be).rmsNorm!(be.getMemoryOffset(x.dataId), be.getMemoryOffset(w.dataId), be.getMemoryOffset(out.dataId), N, D, attrs.eps as number);
    return out;
  });
  registerWasmKernel('EmpoRope', (inputs, be, attrs) => {
    const { x, cos, sin } = inputs as { x: tf.TensorInfo; cos: tf.TensorInfo; sin: tf.TensorInfo };
    const [B, T, H, hd] = x.shape as [number, number, number, number];
    const out = be.makeOutput([B, T, H, hd], 'float32');
    const perBatch = cos.shape[0] === B && B > 1 ? 1 : 0;
    kernels.exportsFor(be).rope!(
      be.getMemoryOffset(x.dataId), be.getMemoryOffset(cos.dataId), be.getMemoryOffset(sin.dataId), be.getMemoryOffset(out.dataId),
      B, T, H, hd, perBatch, attrs.scale as number,
    );
    return out;
  });
});

/** Whether the fused kernels can compute this forward (wasm, float32). */
export function fusedForwardAvailable(...ts: tf.Tensor[]): boolean {
  return wasmKernelsActive('fused') && ts.every((t) => t.dtype === 'float32');
}

/** RMSNorm forward: x [N, D], w [D] -> x / sqrt(mean(x^2) + eps) * w. Call only when fusedForwardAvailable. */
export function rmsNormForward(x: tf.Tensor2D, w: tf.Tensor1D, eps: number): tf.Tensor2D {
  register();
  return tf.engine().runKernel('EmpoRmsNorm', { x, w }, { eps }) as tf.Tensor2D;
}

/**
 * Rotary embedding forward: x [B, T, H, hd], cos/sin [B or 1, T, 1, hd] -> (x cos + rotate_half(x) sin) * scale.
 * Call only when fusedForwardAvailable and hd is a multiple of 8.
 */
export function ropeForward(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D, scale: number): tf.Tensor4D {
  register();
  return tf.engine().runKernel('EmpoRope', { x, cos, sin }, { scale }) as tf.Tensor4D;
}
