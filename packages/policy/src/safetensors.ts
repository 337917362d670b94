/**
 * safetensors read/write, no dependency (https://github.com/huggingface/safetensors#format):
 *
 *   [8 bytes: N, little-endian u64][N bytes: JSON header][data]
 *   header = { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, "__metadata__"?: {..} }
 *
 * Offsets are relative to the start of the data block. Reading converts F32 / BF16 / F16 to float32.
 * Every error names the file.
 */
import { EmpoError } from '@empo/core';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';

export type SafetensorsDtype = 'F32' | 'BF16' | 'F16';

/** A float32 tensor on the host. `data.length` is the product of `shape`. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  /** The dtype each tensor had in the file (before conversion to float32). */
  dtypes: Map<string, SafetensorsDtype>;
  metadata: Record<string, string>;
}

export class SafetensorsError extends EmpoError {
  override name = 'SafetensorsError';
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, BF16: 2, F16: 2 };
const MAX_HEADER = 100 * 1024 * 1024;

if (endianness() !== 'LE') throw new Error('safetensors.ts assumes a little-endian host');

/** One tensor of a safetensors header; `begin`/`end` are byte offsets from the start of the file. */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Validate a header (the JSON after the 8-byte length) against the file size: dtypes, shapes, offsets within
 * the data block, sizes matching shape x dtype, no overlaps. Returns the entries (absolute offsets).
 */
function parseHeader(headerBytes: Uint8Array, fileSize: number, name: string): { entries: Map<string, SafetensorsEntry>; metadata: Record<string, string> } {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${name}: ${msg}`);
  };
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    return fail(`malformed JSON header: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + headerBytes.length;
  const dataLen = fileSize - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  const metadata: Record<string, string> = {};
  for (const [key, raw] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('__metadata__ is not an object');
      for (const [mk, mv] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof mv !== 'string') fail(`__metadata__.${mk} is not a string`);
        metadata[mk] = mv as string;
      }
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (info === null || typeof info !== 'object') fail(`tensor ${key}: entry is not an object`);
    const { dtype, shape, data_offsets: offs } = info;
    if (dtype !== 'F32' && dtype !== 'BF16' && dtype !== 'F16') {
      fail(`tensor ${key}: unsupported dtype ${JSON.stringify(dtype)} (supported: F32, BF16, F16)`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor ${key}: invalid shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`tensor ${key}: invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    const dt = dtype as SafetensorsDtype;
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end < begin) fail(`tensor ${key}: data_offsets [${begin}, ${end}] are reversed`);
    if (end > dataLen) {
      fail(`tensor ${key}: data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes): file truncated`);
    }
    if (end - begin !== count * BYTES[dt]) {
      fail(`tensor ${key}: ${end - begin} bytes of data but shape ${JSON.stringify(shape)} x ${dt} needs ${count * BYTES[dt]}`);
    }
    entries.set(key, { name: key, dtype: dt, shape: [...(shape as number[])], begin: dataStart + begin, end: dataStart + end });
  }
  const spans = [...entries.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]!.begin < spans[i - 1]!.end) fail(`tensors ${spans[i - 1]!.name} and ${spans[i]!.name} overlap`);
  }
  return { entries, metadata };
}

/** The header length of a file whose first 8 bytes are `first8`, checked against the file size. */
function headerLength(first8: Uint8Array, fileSize: number, name: string): number {
  if (fileSize < 8) throw new SafetensorsError(`${name}: file too short for a safetensors header (${fileSize} bytes)`);
  const n64 = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(Math.min(MAX_HEADER, fileSize - 8))) {
    throw new SafetensorsError(`${name}: header length ${n64} exceeds the file size (${fileSize} bytes): truncated or not a safetensors file`);
  }
  return Number(n64);
}

/** Parse a safetensors file already in memory. `name` is used in error messages. */
export function parseSafetensors(bytes: Uint8Array, name: string): SafetensorsFile {
  const n = headerLength(bytes.subarray(0, 8), bytes.length, name);
  const { entries, metadata } = parseHeader(bytes.subarray(8, 8 + n), bytes.length, name);
  const out: SafetensorsFile = { tensors: new Map(), dtypes: new Map(), metadata };
  for (const e of entries.values()) {
    out.tensors.set(e.name, { shape: e.shape, data: decode(bytes.subarray(e.begin, e.end), e.dtype) });
    out.dtypes.set(e.name, e.dtype);
  }
  return out;
}

/** Read a whole .safetensors file. Errors (missing, truncated, malformed) name the file. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new SafetensorsError(`${path}: cannot read: ${(e as Error).message}`);
  }
  return parseSafetensors(bytes, path);
}

/**
 * A safetensors file opened for reading one tensor at a time (the header is read and validated on open), so
 * a large checkpoint never sits in memory whole: at most one tensor's bytes and its float32 copy.
 */
export class SafetensorsReader {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly entries: ReadonlyMap<string, SafetensorsEntry>,
    readonly metadata: Record<string, string>,
  ) {}

  static async open(path: string): Promise<SafetensorsReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw new SafetensorsError(`${path}: cannot read: ${(e as Error).message}`);
    }
    try {
      const size = (await fh.stat()).size;
      const first = new Uint8Array(8);
      if (size >= 8) await readExactly(fh, first, 0, path);
      const n = headerLength(first, size, path);
      const header = new Uint8Array(n);
      await readExactly(fh, header, 8, path);
      const { entries, metadata } = parseHeader(header, size, path);
      return new SafetensorsReader(path, fh, entries, metadata);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Read one tensor, converted to float32. */
  async read(name: string): Promise<HostTensor> {
    const e = this.entries.get(name);
    if (!e) throw new SafetensorsError(`${this.path}: no tensor ${name}`);
    const bytes = new Uint8Array(e.end - e.begin);
    await readExactly(this.fh, bytes, e.begin, this.path);
    return { shape: [...e.shape], data: decode(bytes, e.dtype) };
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

async function readExactly(fh: FileHandle, into: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    // Reads are capped at 1 GiB (the OS may return less; Node rejects buffers over 2 GiB per call).
    const { bytesRead } = await fh.read(into, done, Math.min(into.length - done, 2 ** 30), position + done);
    if (bytesRead === 0) throw new SafetensorsError(`${path}: unexpected end of file at byte ${position + done}: file truncated`);
    done += bytesRead;
  }
}

export interface WriteOptions {
  /** Storage dtype of every tensor (default F32). BF16/F16 round to nearest even. */
  dtype?: SafetensorsDtype;
  metadata?: Record<string, string>;
}

/** A tensor to write whose values are produced when it is written (e.g. downloaded from a tf.Variable). */
export interface LazyTensor {
  shape: number[];
  data: () => Float32Array | Promise<Float32Array>;
}

/** The bytes of a safetensors file. Tensors are stored in the given order; the header is padded to 8 bytes. */
export function serializeSafetensors(tensors: Iterable<[string, HostTensor]>, opts: WriteOptions = {}): Uint8Array {
  const list = [...tensors];
  const header = headerBytes(list.map(([name, t]) => [name, t.shape]), opts);
  const parts = list.map(([name, t]) => encode(checked(name, t.shape, t.data), opts.dtype ?? 'F32'));
  const out = new Uint8Array(header.length + parts.reduce((a, p) => a + p.byteLength, 0));
  out.set(header, 0);
  let off = header.length;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/**
 * Write a safetensors file, one tensor at a time (values may be produced lazily, so only one tensor's bytes
 * are in memory at once), then fsync it.
 */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<[string, HostTensor | LazyTensor]>,
  opts: WriteOptions = {},
): Promise<void> {
  const list = [...tensors];
  const header = headerBytes(list.map(([name, t]) => [name, t.shape]), opts);
  const fh = await open(path, 'w');
  try {
    await fh.write(header);
    for (const [name, t] of list) {
      const data = typeof t.data === 'function' ? await t.data() : t.data;
      await fh.write(encode(checked(name, t.shape, data), opts.dtype ?? 'F32'));
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Bytes one tensor of this shape takes in a file of this dtype. */
export function tensorBytes(shape: readonly number[], dtype: SafetensorsDtype = 'F32'): number {
  return shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
}

function checked(name: string, shape: number[], data: Float32Array): Float32Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new SafetensorsError(`tensor ${name}: shape ${JSON.stringify(shape)} does not match ${data.length} values`);
  return data;
}

/** The 8-byte length and the JSON header (padded with spaces to a multiple of 8 bytes). */
function headerBytes(shapes: [string, number[]][], opts: WriteOptions): Uint8Array {
  const dtype = opts.dtype ?? 'F32';
  const json: Record<string, unknown> = { __metadata__: { format: 'pt', ...opts.metadata } };
  let offset = 0;
  for (const [name, shape] of shapes) {
    if (name === '__metadata__' || name in json) throw new SafetensorsError(`tensor name ${name} is reserved or duplicated`);
    const n = tensorBytes(shape, dtype);
    json[name] = { dtype, shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let text = JSON.stringify(json);
  text += ' '.repeat((8 - ((8 + Buffer.byteLength(text)) % 8)) % 8);
  const h = new TextEncoder().encode(text);
  const header = new Uint8Array(8 + h.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(h.length), true);
  header.set(h, 8);
  return header;
}

// ---- dtype conversion ------------------------------------------------------------------------------

/** Raw little-endian bytes of one tensor -> float32 values. */
function decode(bytes: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  const count = bytes.length / BYTES[dtype];
  if (dtype === 'F32') {
    // Copy into a fresh (aligned) buffer unless it already is one of its own: the file's offsets need not be aligned.
    if (bytes.byteOffset % 4 === 0 && bytes.byteLength === bytes.buffer.byteLength) return new Float32Array(bytes.buffer, 0, count);
    return new Float32Array(new Uint8Array(bytes).buffer); // a copy (Buffer.slice would not copy)
  }
  const src = bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, count) : new Uint16Array(new Uint8Array(bytes).buffer);
  const out = new Float32Array(count);
  if (dtype === 'BF16') {
    const u32 = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) u32[i] = src[i]! << 16;
  } else {
    const table = f16Table();
    for (let i = 0; i < count; i++) out[i] = table[src[i]!]!;
  }
  return out;
}

function encode(data: Float32Array, dtype: SafetensorsDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const u32 = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint16Array(data.length);
  if (dtype === 'BF16') {
    for (let i = 0; i < data.length; i++) out[i] = f32BitsToBf16(u32[i]!);
  } else {
    for (let i = 0; i < data.length; i++) out[i] = f32BitsToF16(u32[i]!);
  }
  return new Uint8Array(out.buffer);
}

/** float32 bits -> bfloat16 bits, round to nearest even; NaN stays NaN. */
export function f32BitsToBf16(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 bits -> IEEE half bits, round to nearest even (overflow -> inf, small values -> subnormals / 0). */
export function f32BitsToF16(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    if (e < -10) return sign; // underflow to zero
    mant |= 0x800000; // implicit bit
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  const rem = mant & 0x1fff;
  let h = (e << 10) | (mant >>> 13);
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // may carry into the exponent: correct (rounds up to inf)
  return sign | h;
}

let F16_TABLE: Float32Array | null = null;
function f16Table(): Float32Array {
  if (F16_TABLE) return F16_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 0x1f) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return (F16_TABLE = t);
}
