/**
 * Batched matmul C[b] = A[b] @ B[b] as a WebAssembly SIMD kernel that runs on the tfjs wasm backend's own heap.
 *
 * Why: tfjs-backend-wasm sends every matmul with a batch dimension (attention's q @ k^T and probs @ v) or a
 * transpose flag to a scalar triple loop (~1 GFLOP/s); only unbatched, untransposed matmuls reach XNNPACK. This
 * kernel computes 4 rows x 8 columns of C at a time with f32x4 vectors (then 4-column and single-column tails,
 * then single rows), reading the inputs in place and writing a tensor allocated by the backend. It is used for
 * unbatched products too: measured interleaved against tfjs' XNNPACK path on the tiny model's shapes, it takes
 * 0.5-1.0x its time (decoding's [128, 128] @ [128, 512]: half; [2016, 128] @ [128, 30]: 1.2x), with the same bits
 * (both sum k in order from 0).
 *
 * Every element of C is summed the same way, whatever the shapes and the tile it falls in:
 * c = ((0 + a_0 b_0) + a_1 b_1) + ... in float32, k in order. So a row of a batch gets the same bits whatever
 * the other rows and batch entries are (the property the samplers' worker split relies on).
 *
 * Where relaxed SIMD compiles (see relaxedSimdAvailable; the `fma` kernel group), every a_k b_k + c is one
 * f32x4.relaxed_madd instead of a multiply then an add: a fused multiply-add on CPUs with FMA (x86 FMA3, ARM),
 * rounded once, so about twice the multiply-add throughput and slightly different bits from the plain kernels
 * (and from XNNPACK). Scalar tails use the same instruction on lane 0, so the property above still holds.
 *
 * Other backends use tf.matMul.
 */
import * as tf from '@tensorflow/tfjs';
import { registerWasmKernel, relaxedSimdAvailable, wasmKernelsActive, WasmKernelModule, once, type WasmBackendLike, type WasmFunction } from './runtime.ts';
import { Code, F32, I32, V128 } from './wasm-asm.ts';

/** Rows of C per register tile (bmm): ROWS x 2 vector accumulators (6 rows spill registers: slower). */
const ROWS = 4;

/** Contraction steps per pass over C (bmm): a [K_BLOCK, N] panel of B stays in cache while it is used. */
const K_BLOCK = 256;

/**
 * The kernel: bmm(a, b, c, batch, M, K, N), pointers in bytes, row-major contiguous float32, K >= 1. The k axis
 * is cut into blocks of K_BLOCK: the first block starts each element of C at 0, the next ones continue from the
 * float32 value stored in C, so the sum is the same sequence of operations as without blocks.
 *
 * Transposed (bmmTN(a, b, c, batch, M, K, N, panel), A stored [K, M]), the ROWS values of A a tile reads at each
 * k lie in one row of A, a row stride apart from the next k's: one cache line per k, a quarter of it used. So for
 * each k block and each ROWS rows of C, those [K_BLOCK, ROWS] values are first copied to `panel` (ROWS x K_BLOCK
 * float32, contiguous), which every tile of those rows then reads in order. Values are moved, not computed: the
 * same bits.
 */
function bmmCode(transposeA: boolean, fma: boolean): Code {
  const f = new Code(new Array<typeof I32>(transposeA ? 8 : 7).fill(I32)); // bmmTN takes the panel too
  const [a, b, c, batch, M, K, N, panel] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [bi, i, j, k, pa, pb, pc, aB, bB, cB, k0, kLen] = Array.from({ length: 12 }, () => f.local(I32));
  // row strides in bytes: rowA[r] = r K 4, rowC[r] = r N 4 (r = 1 .. ROWS-1)
  const rowA: (number | null)[] = [null, ...Array.from({ length: ROWS - 1 }, () => f.local(I32))];
  const rowC: (number | null)[] = [null, ...Array.from({ length: ROWS - 1 }, () => f.local(I32))];
  const K4 = rowA[1]!;
  const N4 = rowC[1]!;
  const M4 = f.local(I32);
  const acc = Array.from({ length: ROWS * 2 }, () => f.local(V128)); // acc[r * 2 + v]
  const bv = [f.local(V128), f.local(V128)];
  const s = f.local(V128);
  const facc = Array.from({ length: ROWS }, () => f.local(F32));
  const vacc = acc; // the scalar tiles' accumulators with fma (lane 0), the vector tiles' registers
  const fb = f.local(F32);

  /** Push the address of row r of the tile: base (+ stride r). */
  const addr = (base: number, stride: number | null) => {
    f.get(base);
    if (stride !== null) f.get(stride).add();
  };
  /**
   * pa = &A[i, k0] (A [M, K]: aB + i K4 + k0 4; transposed, A stored [K, M]: aB + k0 M4 + i 4; packed: the panel),
   * pb = &B[k0, j], pc = &C[i, j], k = kLen.
   */
  const tileStart = (packed: boolean) => {
    if (packed) f.get(panel).set(pa);
    else if (transposeA) f.get(aB).get(k0).get(M4).mul().add().get(i).i32(2).shl().add().set(pa);
    else f.get(aB).get(i).get(K4).mul().add().get(k0).i32(2).shl().add().set(pa);
    f.get(bB).get(k0).get(N4).mul().add().get(j).i32(2).shl().add().set(pb);
    f.get(cB).get(i).get(N4).mul().add().get(j).i32(2).shl().add().set(pc);
    f.get(kLen).set(k);
  };
  /** Load A[i + r, k] with `load` (its memarg offset is 4r when A is transposed: the row's values are adjacent). */
  const loadA = (r: number, load: () => void) => {
    if (transposeA) f.get(pa);
    else addr(pa, rowA[r]!);
    load();
  };
  /** Next k: the next column of A (4 bytes on), its next row when transposed, the panel's next ROWS values. */
  const advanceA = (packed: boolean) => (packed ? f.inc(pa, 4 * ROWS) : transposeA ? f.inc(pa, () => f.get(M4)) : f.inc(pa, 4));
  /** The panel: A[k0 .. k0+kLen-1, i .. i+ROWS-1] (A stored [K, M]), ROWS values per k, one vector. */
  const packPanel = () => {
    f.get(aB).get(k0).get(M4).mul().add().get(i).i32(2).shl().add().set(pa);
    f.get(panel).set(pb);
    f.get(kLen).set(k);
    f.countDown(k, () => {
      f.get(pb).get(pa).v128Load().v128Store();
      f.inc(pa, () => f.get(M4));
      f.inc(pb, 4 * ROWS);
    });
  };
  /** Accumulators start at 0 in the first k block, at the partial sums in C in the next ones. */
  const firstBlock = () => f.get(k0).eqz();
  /** R rows x V vectors of 4 columns. */
  const vectorTile = (R: number, V: number, packed: boolean) => {
    tileStart(packed);
    f.ifElse(firstBlock, () => {
      for (let r = 0; r < R; r++) for (let v = 0; v < V; v++) f.v128Zero().set(acc[r * 2 + v]!);
    }, () => {
      for (let r = 0; r < R; r++) for (let v = 0; v < V; v++) (addr(pc, rowC[r]!), f.v128Load(16 * v).set(acc[r * 2 + v]!));
    });
    f.countDown(k, () => {
      for (let v = 0; v < V; v++) f.get(pb).v128Load(16 * v).set(bv[v]!);
      for (let r = 0; r < R; r++) {
        loadA(r, () => f.v128Load32Splat(4 * r * Number(transposeA)));
        f.set(s);
        for (let v = 0; v < V; v++) {
          if (fma) f.get(s).get(bv[v]!).get(acc[r * 2 + v]!).f32x4RelaxedMadd().set(acc[r * 2 + v]!);
          else f.get(acc[r * 2 + v]!).get(s).get(bv[v]!).f32x4Mul().f32x4Add().set(acc[r * 2 + v]!);
        }
      }
      advanceA(packed);
      f.inc(pb, () => f.get(N4));
    });
    for (let r = 0; r < R; r++) {
      for (let v = 0; v < V; v++) {
        addr(pc, rowC[r]!);
        f.get(acc[r * 2 + v]!).v128Store(16 * v);
      }
    }
  };
  /** R rows x 1 column. */
  const scalarTile = (R: number, packed: boolean) => {
    tileStart(packed);
    if (fma) {
      // The vector tiles' fused a * b + c on splatted lanes (WebAssembly has no scalar fused multiply-add); lane 0
      // is the result.
      f.ifElse(firstBlock, () => {
        for (let r = 0; r < R; r++) f.v128Zero().set(vacc[r]!);
      }, () => {
        for (let r = 0; r < R; r++) (addr(pc, rowC[r]!), f.v128Load32Splat().set(vacc[r]!));
      });
      f.countDown(k, () => {
        f.get(pb).v128Load32Splat().set(bv[0]!);
        for (let r = 0; r < R; r++) {
          loadA(r, () => f.v128Load32Splat(4 * r * Number(transposeA)));
          f.get(bv[0]!).get(vacc[r]!).f32x4RelaxedMadd().set(vacc[r]!);
        }
        advanceA(packed);
        f.inc(pb, () => f.get(N4));
      });
      for (let r = 0; r < R; r++) {
        addr(pc, rowC[r]!);
        f.get(vacc[r]!).f32x4ExtractLane(0).f32Store();
      }
      return;
    }
    f.ifElse(firstBlock, () => {
      for (let r = 0; r < R; r++) f.f32Zero().set(facc[r]!);
    }, () => {
      for (let r = 0; r < R; r++) (addr(pc, rowC[r]!), f.f32Load().set(facc[r]!));
    });
    f.countDown(k, () => {
      f.get(pb).f32Load().set(fb);
      for (let r = 0; r < R; r++) {
        f.get(facc[r]!);
        loadA(r, () => f.f32Load(4 * r * Number(transposeA)));
        f.get(fb).f32Mul().f32Add().set(facc[r]!);
      }
      advanceA(packed);
      f.inc(pb, () => f.get(N4));
    });
    for (let r = 0; r < R; r++) {
      addr(pc, rowC[r]!);
      f.get(facc[r]!).f32Store();
    }
  };
  /** Every column of rows i .. i+R-1 (packed: A's values for them are in the panel). */
  const rows = (R: number, packed = false) => {
    f.i32(0).set(j);
    f.while(() => f.get(j).i32(8).add().get(N).leU(), () => (vectorTile(R, 2, packed), f.inc(j, 8)));
    f.while(() => f.get(j).i32(4).add().get(N).leU(), () => (vectorTile(R, 1, packed), f.inc(j, 4)));
    f.while(() => f.get(j).get(N).ltU(), () => (scalarTile(R, packed), f.inc(j, 1)));
  };

  f.get(K).i32(2).shl().set(K4);
  f.get(N).i32(2).shl().set(N4);
  for (let r = 2; r < ROWS; r++) {
    f.get(rowA[r - 1]!).get(K4).add().set(rowA[r]!);
    f.get(rowC[r - 1]!).get(N4).add().set(rowC[r]!);
  }
  f.get(M).i32(2).shl().set(M4);
  f.get(a).set(aB).get(b).set(bB).get(c).set(cB);
  f.i32(0).set(bi);
  f.while(() => f.get(bi).get(batch).ltU(), () => {
    f.i32(0).set(k0);
    f.while(() => f.get(k0).get(K).ltU(), () => {
      // kLen = min(K_BLOCK, K - k0)
      f.get(K).get(k0).sub().set(kLen);
      f.ifElse(() => f.get(kLen).i32(K_BLOCK).gtU(), () => f.i32(K_BLOCK).set(kLen), () => undefined);
      f.i32(0).set(i);
      f.while(() => f.get(i).i32(ROWS).add().get(M).leU(), () => {
        if (transposeA) packPanel();
        rows(ROWS, transposeA);
        f.inc(i, ROWS);
      });
      f.while(() => f.get(i).get(M).ltU(), () => (rows(1), f.inc(i, 1)));
      f.inc(k0, K_BLOCK);
    });
    f.inc(aB, () => f.get(M).get(K4).mul());
    f.inc(bB, () => f.get(K).get(N4).mul());
    f.inc(cB, () => f.get(M).get(N4).mul());
    f.inc(bi, 1);
  });
  return f;
}

/**
 * bmmNT(a, b, c, batch, M, K, N): C[b] = A[b] @ B[b]^T with A [M, K], B [N, K]. Each element is a dot product
 * over k with four lanes (lane l sums the k = l mod 4 terms in order), then ((l0 + l1) + (l2 + l3)), then the
 * K mod 4 last terms in order: the same order for every element, whatever the shapes and tiles.
 */
function bmmNTCode(fma: boolean): Code {
  const f = new Code([I32, I32, I32, I32, I32, I32, I32]);
  const [a, b, c, batch, M, K, N] = [0, 1, 2, 3, 4, 5, 6];
  const [bi, i, j, k, pa, pb, pc, aB, bB, cB, K4, K16, rowA] = Array.from({ length: 13 }, () => f.local(I32));
  const acc = Array.from({ length: 4 }, () => f.local(V128));
  const av = f.local(V128);
  const sum = f.local(F32);

  /** C[i, j .. j+C-1] for C rows of B (4 or 1). */
  const tile = (C: number) => {
    for (let r = 0; r < C; r++) f.v128Zero().set(acc[r]!);
    f.get(rowA).set(pa);
    f.get(bB).get(j).get(K4).mul().add().set(pb);
    f.i32(0).set(k);
    f.while(() => f.get(k).i32(4).add().get(K).leU(), () => {
      f.get(pa).v128Load().set(av);
      for (let r = 0; r < C; r++) {
        if (!fma) f.get(acc[r]!);
        f.get(av).get(pb);
        if (r > 0) f.get(K4).i32(r).mul().add();
        f.v128Load();
        if (fma) f.get(acc[r]!).f32x4RelaxedMadd().set(acc[r]!);
        else f.f32x4Mul().f32x4Add().set(acc[r]!);
      }
      f.inc(pa, 16).inc(pb, 16).inc(k, 4);
    });
    for (let r = 0; r < C; r++) {
      // ((l0 + l1) + (l2 + l3)), then the K mod 4 tail in order
      f.get(acc[r]!).f32x4ExtractLane(0).get(acc[r]!).f32x4ExtractLane(1).f32Add();
      f.get(acc[r]!).f32x4ExtractLane(2).get(acc[r]!).f32x4ExtractLane(3).f32Add().f32Add().set(sum);
      f.get(K).i32(-4).and().set(k);
      f.while(() => f.get(k).get(K).ltU(), () => {
        if (!fma) f.get(sum);
        f.get(rowA).get(k).i32(2).shl().add().f32Load();
        if (fma) f.f32x4Splat();
        f.get(bB).get(j).i32(r).add().get(K4).mul().add().get(k).i32(2).shl().add().f32Load();
        if (fma) f.f32x4Splat().get(sum).f32x4Splat().f32x4RelaxedMadd().f32x4ExtractLane(0).set(sum);
        else f.f32Mul().f32Add().set(sum);
        f.inc(k, 1);
      });
      f.get(pc).get(sum).f32Store(4 * r);
    }
  };

  f.get(K).i32(2).shl().set(K4);
  f.get(K4).i32(2).shl().set(K16);
  f.get(a).set(aB).get(b).set(bB).get(c).set(cB);
  f.i32(0).set(bi);
  f.while(() => f.get(bi).get(batch).ltU(), () => {
    f.i32(0).set(i);
    f.while(() => f.get(i).get(M).ltU(), () => {
      f.get(aB).get(i).get(K4).mul().add().set(rowA);
      f.get(cB).get(i).get(N).mul().i32(2).shl().add().set(pc);
      f.i32(0).set(j);
      f.while(() => f.get(j).i32(4).add().get(N).leU(), () => (tile(4), f.inc(pc, 16), f.inc(j, 4)));
      f.while(() => f.get(j).get(N).ltU(), () => (tile(1), f.inc(pc, 4), f.inc(j, 1)));
      f.inc(i, 1);
    });
    f.inc(aB, () => f.get(M).get(K4).mul());
    f.inc(bB, () => f.get(N).get(K4).mul());
    f.inc(cB, () => f.get(M).get(N).mul().i32(2).shl());
    f.inc(bi, 1);
  });
  return f;
}

const module = (fma: boolean) =>
  new WasmKernelModule(() => [{ name: 'bmm', code: bmmCode(false, fma) }, { name: 'bmmTN', code: bmmCode(true, fma) }, { name: 'bmmNT', code: bmmNTCode(fma) }]);
const plainKernels = module(false);
const fmaKernels = module(true);

/** The fused multiply-add kernels when the `fma` group is on and relaxed SIMD compiles, else the plain ones. */
const kernelsNow = () => (wasmKernelsActive('fma') && relaxedSimdAvailable() ? fmaKernels : plainKernels);

/** The matmul functions `batchMatMul` & co. run now on `be` (bmm, bmmTN, bmmNT), for callers that bypass the engine. */
export function matmulKernelsFor(be: WasmBackendLike): Record<string, WasmFunction> {
  return kernelsNow().exportsFor(be);
}

const KERNELS = { bmm: 'EmpoBatchMatMul', bmmTN: 'EmpoBatchMatMulTN', bmmNT: 'EmpoBatchMatMulNT' } as const;

const register = once((): void => {
  for (const [which, kernelName] of Object.entries(KERNELS) as [keyof typeof KERNELS, string][]) {
    registerWasmKernel(kernelName, (inputs, be) => {
      const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const r = a.shape.length;
      const [M, K] = which === 'bmmTN' ? [a.shape[r - 1]!, a.shape[r - 2]!] : [a.shape[r - 2]!, a.shape[r - 1]!];
      const N = which === 'bmmNT' ? b.shape[r - 2]! : b.shape[r - 1]!;
      const batch = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
      const out = be.makeOutput([...a.shape.slice(0, -2), M, N], 'float32');
      if (batch * M * N === 0) return out;
      const args = [be.getMemoryOffset(a.dataId), be.getMemoryOffset(b.dataId), be.getMemoryOffset(out.dataId), batch, M, K, N];
      if (which !== 'bmmTN') kernelsNow().exportsFor(be)[which]!(...args);
      else {
        const panel = be.makeOutput([ROWS * K_BLOCK], 'float32');
        try {
          kernelsNow().exportsFor(be).bmmTN!(...args, be.getMemoryOffset(panel.dataId));
        } finally {
          be.disposeData(panel.dataId);
        }
      }
      return out;
    });
  }
});

function check(a: tf.Tensor, b: tf.Tensor, which: keyof typeof KERNELS): void {
  const r = a.rank;
  const kA = which === 'bmmTN' ? a.shape[r - 2] : a.shape[r - 1];
  const kB = which === 'bmmNT' ? b.shape[r - 1] : b.shape[r - 2];
  if (r < 2 || b.rank !== r || kA !== kB || a.shape.slice(0, -2).some((d, i) => d !== b.shape[i])) {
    throw new Error(`batchMatMul: shapes [${a.shape}] and [${b.shape}] do not match (${which === 'bmm' ? 'a @ b' : which === 'bmmTN' ? 'a^T @ b' : 'a @ b^T'})`);
  }
}

/** Whether the SIMD kernels apply (wasm backend, kernels enabled, float32, no empty operand). */
function useKernel(a: tf.Tensor, b: tf.Tensor, group: 'matmul' | 'tn' = 'matmul'): boolean {
  return wasmKernelsActive(group) && a.size > 0 && b.size > 0 && a.dtype === 'float32' && b.dtype === 'float32';
}

/**
 * Whether a @ b runs on the SIMD kernel (wasm backend, kernels enabled, float32 operands): every element then sums
 * its k terms in order from 0, so products that differ only by the order of their two factors give the same bits.
 */
export function simdMatMulApplies(a: tf.Tensor, b: tf.Tensor): boolean {
  return useKernel(a, b);
}

/**
 * a @ b for a [..., M, K] and b [..., K, N] with the same leading (batch) dims, float32. Not differentiable by
 * itself: model.ts wraps it in a custom gradient.
 */
export function batchMatMul<R extends tf.Rank>(a: tf.Tensor<R>, b: tf.Tensor<R>): tf.Tensor<R> {
  check(a, b, 'bmm');
  if (!useKernel(a, b)) return tf.matMul(a, b);
  register();
  return tf.engine().runKernel(KERNELS.bmm, { a, b }, {}) as tf.Tensor<R>;
}

/** a @ b^T for a [..., M, K] and b [..., N, K] (same leading dims), float32. Not differentiable by itself. */
export function batchMatMulNT<R extends tf.Rank>(a: tf.Tensor<R>, b: tf.Tensor<R>): tf.Tensor<R> {
  check(a, b, 'bmmNT');
  if (!useKernel(a, b)) return tf.matMul(a, b, false, true);
  register();
  return tf.engine().runKernel(KERNELS.bmmNT, { a, b }, {}) as tf.Tensor<R>;
}

/**
 * a^T @ b for a [..., K, M] and b [..., K, N] (same leading dims), float32: the weight gradient x^T dy without
 * transposing x (the kernel reads A's rows as they lie). The same sums, in the same order, as transpose + a @ b.
 * Not differentiable by itself. Other backends: an explicit transpose and tf.matMul.
 */
export function batchMatMulTN<R extends tf.Rank>(a: tf.Tensor<R>, b: tf.Tensor<R>): tf.Tensor<R> {
  check(a, b, 'bmmTN');
  if (!useKernel(a, b, 'tn')) {
    const perm = a.shape.map((_, i) => (i === a.rank - 2 ? a.rank - 1 : i === a.rank - 1 ? a.rank - 2 : i));
    return tf.tidy(() => batchMatMul(tf.transpose(a, perm) as tf.Tensor<R>, b));
  }
  register();
  return tf.engine().runKernel(KERNELS.bmmTN, { a, b }, {}) as tf.Tensor<R>;
}
