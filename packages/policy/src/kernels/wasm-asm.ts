/**
 * Just enough of a WebAssembly binary encoder to write small SIMD kernels in TypeScript (no toolchain): one
 * module importing a memory (`env.memory`) and exporting functions. Instructions are appended to a `Code`
 * buffer with typed helpers; structured control flow takes callbacks.
 *   https://webassembly.github.io/spec/core/binary/ for the encodings used here.
 */

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof V128;

function uleb(n: number, out: number[]): void {
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
}

function sleb(n: number, out: number[]): void {
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) return void out.push(byte);
    out.push(byte | 0x80);
  }
}

const bytesOf = (s: string) => [...new TextEncoder().encode(s)];
const vec = (items: number[][], out: number[] = []) => {
  uleb(items.length, out);
  for (const i of items) out.push(...i);
  return out;
};

/** A function body under construction: its locals and its instructions. */
export class Code {
  readonly bytes: number[] = [];
  private readonly locals: ValType[] = [];

  constructor(readonly params: ValType[]) {}

  /** Declare a local; returns its index. */
  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  private op(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }
  private simd(opcode: number): this {
    this.bytes.push(0xfd);
    uleb(opcode, this.bytes);
    return this;
  }
  private memarg(align: number, offset: number): this {
    uleb(align, this.bytes);
    uleb(offset, this.bytes);
    return this;
  }

  get(i: number) { this.op(0x20); uleb(i, this.bytes); return this; }
  set(i: number) { this.op(0x21); uleb(i, this.bytes); return this; }
  i32(n: number) { this.op(0x41); sleb(n | 0, this.bytes); return this; }
  add() { return this.op(0x6a); }
  sub() { return this.op(0x6b); }
  mul() { return this.op(0x6c); }
  shl() { return this.op(0x74); }
  shrU() { return this.op(0x76); }
  eqz() { return this.op(0x45); }
  gtU() { return this.op(0x4b); }
  leU() { return this.op(0x4d); }
  and() { return this.op(0x71); }
  ltU() { return this.op(0x49); }
  f32Load(offset = 0) { return this.op(0x2a).memarg(2, offset); }
  f32Store(offset = 0) { return this.op(0x38).memarg(2, offset); }
  f32Add() { return this.op(0x92); }
  f32Sub() { return this.op(0x93); }
  f32Div() { return this.op(0x95); }
  f32Sqrt() { return this.op(0x91); }
  f32FromU32() { return this.op(0xb3); }
  f32Mul() { return this.op(0x94); }
  f32Zero() { return this.op(0x43, 0, 0, 0, 0); }
  f32One() { return this.op(0x43, 0x00, 0x00, 0x80, 0x3f); }
  /** memory.copy: pops dst, src, length (bytes). */
  memoryCopy() { return this.op(0xfc, 0x0a, 0x00, 0x00); }
  v128Load(offset = 0) { return this.simd(0x00).memarg(0, offset); }
  /** v128.load32_splat: one float32 from memory into all four lanes. */
  v128Load32Splat(offset = 0) { return this.simd(0x09).memarg(2, offset); }
  v128Store(offset = 0) { return this.simd(0x0b).memarg(0, offset); }
  /** i8x16.shuffle: the bytes `lanes` (0-15 from the first operand, 16-31 from the second) of two vectors. */
  i8x16Shuffle(lanes: readonly number[]) {
    if (lanes.length !== 16 || lanes.some((l) => !Number.isInteger(l) || l < 0 || l > 31)) throw new Error(`i8x16.shuffle: 16 lanes in [0, 32) expected, got [${lanes}]`);
    this.simd(0x0d);
    this.bytes.push(...lanes);
    return this;
  }
  v128Zero() { this.simd(0x0c); this.bytes.push(...new Array<number>(16).fill(0)); return this; }
  f32x4ExtractLane(lane: number) { this.simd(0x1f); this.bytes.push(lane); return this; }
  f32x4Add() { return this.simd(0xe4); }
  f32x4Neg() { return this.simd(0xe1); }
  f32x4Splat() { return this.simd(0x13); }
  f32x4Mul() { return this.simd(0xe6); }
  f32x4Sub() { return this.simd(0xe5); }
  f32x4Div() { return this.simd(0xe7); }
  f32x4Sqrt() { return this.simd(0xe3); }
  /** Relaxed SIMD's f32x4.relaxed_madd: a * b + c, one fused multiply-add where the CPU has one (x86 FMA3). */
  f32x4RelaxedMadd() { return this.simd(0x105); }

  /** local[i] += n (i32). */
  inc(i: number, n: number | (() => void)) {
    this.get(i);
    if (typeof n === 'number') this.i32(n);
    else n();
    return this.add().set(i);
  }

  /** `while (cond) body`: cond pushes an i32 (non-zero: run the body again). */
  while(cond: () => void, body: () => void) {
    this.op(0x02, 0x40, 0x03, 0x40); // block, loop
    cond();
    this.eqz().op(0x0d, 1); // br_if 1: leave the block when cond is 0
    body();
    this.op(0x0c, 0, 0x0b, 0x0b); // br 0 (next iteration), end loop, end block
    return this;
  }

  /** `if (cond) then else otherwise`: cond pushes an i32. */
  ifElse(cond: () => void, then: () => void, otherwise: () => void) {
    cond();
    this.op(0x04, 0x40);
    then();
    this.op(0x05);
    otherwise();
    return this.op(0x0b);
  }

  /** `do body while (--counter != 0)` (the counter is an i32 local, at least 1 on entry). */
  countDown(counter: number, body: () => void) {
    this.op(0x03, 0x40);
    body();
    this.get(counter).i32(1).sub().set(counter);
    this.get(counter).op(0x0d, 0, 0x0b); // br_if 0, end loop
    return this;
  }

  /** The body as the binary format's `func`: locals (run-length encoded) then the expression. */
  encode(): number[] {
    const groups: number[][] = [];
    for (const t of this.locals) {
      const last = groups.at(-1);
      if (last && last[1] === t) last[0]!++;
      else groups.push([1, t]);
    }
    const body = vec(groups.map(([n, t]) => { const o: number[] = []; uleb(n!, o); o.push(t!); return o; }));
    body.push(...this.bytes, 0x0b);
    const out: number[] = [];
    uleb(body.length, out);
    return out.concat(body);
  }
}

/** A module importing `env.memory` and exporting the given functions (no results). */
export function encodeModule(functions: { name: string; code: Code }[]): Uint8Array {
  const section = (id: number, content: number[]) => {
    const out = [id];
    uleb(content.length, out);
    return out.concat(content);
  };
  const types = vec(functions.map((f) => [0x60, ...vec(f.code.params.map((t) => [t])), 0x00]));
  const imports = vec([[...vec(bytesOf('env').map((b) => [b])), ...vec(bytesOf('memory').map((b) => [b])), 0x02, 0x00, 0x00]]);
  const funcs = vec(functions.map((_, i) => { const o: number[] = []; uleb(i, o); return o; }));
  const exports = vec(functions.map((f, i) => { const o = vec(bytesOf(f.name).map((b) => [b])); o.push(0x00); uleb(i, o); return o; }));
  const code = vec(functions.map((f) => f.code.encode()));
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, types), ...section(2, imports), ...section(3, funcs), ...section(7, exports), ...section(10, code),
  ]);
}
