import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { f32BitsToBf16, f32BitsToF16, parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors, type HostTensor } from '../src/index.ts';
import { tempDir } from './helpers.ts';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());

const bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0]!;

/** A safetensors file built by hand: header JSON + raw data bytes. */
function rawFile(header: unknown, data: Uint8Array, headerLenOverride?: bigint): Uint8Array {
  const h = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLenOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('safetensors round trip', () => {
  const tensors: [string, HostTensor][] = [
    ['a.weight', { shape: [2, 3], data: Float32Array.of(1, -2, 0.5, 3.25, -0.125, 1024) }],
    ['b.bias', { shape: [3], data: Float32Array.of(0, -0, 65504) }],
    ['scalar', { shape: [], data: Float32Array.of(7) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
  ];

  for (const dtype of ['F32', 'BF16', 'F16'] as const) {
    test(`${dtype}: exactly representable values survive write + read`, async () => {
      const path = join(dir, `rt-${dtype}.safetensors`);
      await writeSafetensors(path, tensors, { dtype, metadata: { note: 'hi' } });
      const f = await readSafetensors(path);
      expect([...f.tensors.keys()]).toEqual(tensors.map(([n]) => n));
      for (const [name, t] of tensors) {
        const got = f.tensors.get(name)!;
        expect(got.shape).toEqual(t.shape);
        // 65504 is the largest half; in bf16 it rounds to 65536.
        const want = Array.from(t.data, (x) => (dtype === 'BF16' && x === 65504 ? 65536 : x));
        expect(Array.from(got.data)).toEqual(want);
        expect(f.dtypes.get(name)).toBe(dtype);
      }
      expect(f.metadata).toEqual({ format: 'pt', note: 'hi' });
    });
  }

  test('header is 8-byte aligned JSON with dtype, shape, data_offsets and format=pt metadata', () => {
    const bytes = serializeSafetensors(tensors.slice(0, 2), { dtype: 'BF16' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(header['a.weight']).toEqual({ dtype: 'BF16', shape: [2, 3], data_offsets: [0, 12] });
    expect(header['b.bias']).toEqual({ dtype: 'BF16', shape: [3], data_offsets: [12, 18] });
    expect(bytes.length).toBe(8 + n + 18);
  });

  test('BF16 and F16 writing rounds to nearest even', () => {
    // bf16 keeps 8 mantissa bits: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 -> even (1)
    expect(f32BitsToBf16(bits(1 + 2 ** -8))).toBe(0x3f80);
    expect(f32BitsToBf16(bits(1 + 3 * 2 ** -8))).toBe(0x3f82); // tie -> even (up)
    expect(f32BitsToBf16(bits(1 + 2 ** -8 + 2 ** -12))).toBe(0x3f81); // above the tie -> up
    expect(f32BitsToBf16(bits(NaN)) & 0x7f80).toBe(0x7f80);
    expect(f32BitsToF16(bits(1))).toBe(0x3c00);
    expect(f32BitsToF16(bits(1 + 2 ** -11))).toBe(0x3c00); // tie -> even
    expect(f32BitsToF16(bits(1 + 3 * 2 ** -11))).toBe(0x3c02);
    expect(f32BitsToF16(bits(70000))).toBe(0x7c00); // overflow -> inf
    expect(f32BitsToF16(bits(2 ** -24))).toBe(0x0001); // smallest subnormal
    expect(f32BitsToF16(bits(-(2 ** -20)))).toBe(0x8010);
    expect(f32BitsToF16(bits(2 ** -26))).toBe(0x0000); // underflow
  });

  test('reads F16 subnormals, infinities and BF16 from hand-written bytes, with metadata and unaligned offsets', () => {
    const data = new Uint8Array(2 + 6 + 4);
    const dv = new DataView(data.buffer);
    dv.setUint16(0, 0x3c00, true); // pad tensor "p" (F16 1.0) so later tensors are unaligned
    dv.setUint16(2, 0x0001, true); // F16 2^-24
    dv.setUint16(4, 0xfc00, true); // F16 -inf
    dv.setUint16(6, 0xc000, true); // F16 -2
    dv.setUint16(8, 0x3fc0, true); // BF16 1.5
    dv.setUint16(10, 0xc2f7, true); // BF16 -123.5
    const file = rawFile(
      {
        __metadata__: { format: 'pt' },
        p: { dtype: 'F16', shape: [1], data_offsets: [0, 2] },
        h: { dtype: 'F16', shape: [3], data_offsets: [2, 8] },
        b: { dtype: 'BF16', shape: [1, 2], data_offsets: [8, 12] },
      },
      data,
    );
    const f = parseSafetensors(file, 'hand.safetensors');
    expect(Array.from(f.tensors.get('h')!.data)).toEqual([2 ** -24, -Infinity, -2]);
    expect(Array.from(f.tensors.get('b')!.data)).toEqual([1.5, -123.5]);
    expect(f.tensors.get('b')!.shape).toEqual([1, 2]);
  });
});

describe('safetensors rejects bad files, naming the file', () => {
  const good = () => serializeSafetensors([['w', { shape: [4], data: Float32Array.of(1, 2, 3, 4) }]]);

  async function expectReadError(bytes: Uint8Array, pattern: RegExp): Promise<void> {
    const path = join(dir, `bad-${Math.random().toString(36).slice(2)}.safetensors`);
    await writeFile(path, bytes);
    const err = await readSafetensors(path).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toContain(path);
    expect(err!.message).toMatch(pattern);
  }

  test('truncated data', async () => {
    const b = good();
    await expectReadError(b.subarray(0, b.length - 3), /past the end|truncated/);
  });
  test('truncated header', async () => {
    await expectReadError(good().subarray(0, 20), /header length .* exceeds|truncated/);
  });
  test('shorter than 8 bytes', async () => {
    await expectReadError(Uint8Array.of(1, 2, 3), /too short/);
  });
  test('header length larger than the file', async () => {
    await expectReadError(rawFile('{}', new Uint8Array(0), 1000n), /exceeds the file size/);
  });
  test('malformed JSON', async () => {
    await expectReadError(rawFile('{"w": {"dtype": "F32",', new Uint8Array(16)), /malformed JSON/);
  });
  test('header not an object', async () => {
    await expectReadError(rawFile('[1,2]', new Uint8Array(0)), /not a JSON object/);
  });
  test('size does not match shape x dtype', async () => {
    await expectReadError(rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, new Uint8Array(16)), /needs 12/);
  });
  test('offsets beyond the data', async () => {
    await expectReadError(rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: [4, 20] } }, new Uint8Array(16)), /past the end/);
  });
  test('reversed offsets', async () => {
    await expectReadError(rawFile({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, new Uint8Array(16)), /reversed/);
  });
  test('overlapping tensors', async () => {
    await expectReadError(
      rawFile(
        { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
        new Uint8Array(12),
      ),
      /overlap/,
    );
  });
  test('unsupported dtype', async () => {
    await expectReadError(rawFile({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), /unsupported dtype "I64"/);
  });
  test('bad shape', async () => {
    await expectReadError(rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /invalid shape/);
  });
  test('missing file', async () => {
    const path = join(dir, 'nope.safetensors');
    await expect(readSafetensors(path)).rejects.toThrow(path);
  });
  test('the good file itself reads', async () => {
    const path = join(dir, 'good.safetensors');
    await writeFile(path, good());
    expect(Array.from((await readSafetensors(path)).tensors.get('w')!.data)).toEqual([1, 2, 3, 4]);
    expect((await readFile(path)).length).toBe(good().length);
  });
  test('writing a tensor whose data does not match its shape fails', () => {
    expect(() => serializeSafetensors([['w', { shape: [3], data: new Float32Array(4) }]])).toThrow(/does not match/);
  });
});
