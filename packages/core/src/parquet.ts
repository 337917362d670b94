import { existsSync, readFileSync } from 'node:fs';
import * as arrow from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { writeFileAtomic, writeFileAtomicAsync } from './atomic.ts';
import { EmpoError } from './errors.ts';
import type { ColumnSpec, ColumnType, TableSpec } from './schemas.ts';

type ColumnValue = string | number | boolean | null | ArrayLike<number>;
export type Row = Record<string, ColumnValue>;

function arrowType(type: ColumnType): arrow.DataType {
  switch (type) {
    case 'utf8': return new arrow.Utf8();
    case 'int32': return new arrow.Int32();
    case 'float32': return new arrow.Float32();
    case 'float64': return new arrow.Float64();
    case 'bool': return new arrow.Bool();
    case 'list<int32>': return new arrow.List(new arrow.Field('item', new arrow.Int32(), false));
    case 'list<float32>': return new arrow.List(new arrow.Field('item', new arrow.Float32(), false));
  }
}

const typeNames: Record<ColumnType, string> = {
  utf8: 'Utf8', int32: 'Int32', float32: 'Float32', float64: 'Float64', bool: 'Bool',
  'list<int32>': 'List<Int32>', 'list<float32>': 'List<Float32>',
};

/** A list column built straight from one flat typed array and offsets (much faster than vectorFromArray). */
function listVector(column: ColumnSpec, specName: string, rows: readonly object[]): arrow.Vector {
  const offsets = new Int32Array(rows.length + 1);
  rows.forEach((row, i) => {
    const value = (row as Row)[column.name] as ArrayLike<number> | null | undefined;
    if (value === null || value === undefined || typeof value !== 'object') {
      throw new Error(`${specName} row ${i}: column '${column.name}' must be a list of numbers`);
    }
    offsets[i + 1] = offsets[i]! + value.length;
  });
  const isInt = column.type === 'list<int32>';
  const flat = isInt ? new Int32Array(offsets[rows.length]!) : new Float32Array(offsets[rows.length]!);
  rows.forEach((row, i) => flat.set((row as Row)[column.name] as ArrayLike<number>, offsets[i]!));
  const listType = arrowType(column.type) as arrow.List;
  const child = arrow.makeData({ type: listType.children[0]!.type, length: flat.length, data: flat } as never);
  return arrow.makeVector(arrow.makeData({ type: listType, length: rows.length, nullCount: 0, valueOffsets: offsets, child } as never));
}

/** Build an Arrow table with exactly the spec's columns, in order, from plain rows. */
export function tableFromRows(spec: TableSpec, rows: readonly object[]): arrow.Table {
  const vectors: Record<string, arrow.Vector> = {};
  for (const column of spec.columns) {
    if (column.type.startsWith('list<')) {
      vectors[column.name] = listVector(column, spec.name, rows);
      continue;
    }
    const values = rows.map((row, i) => {
      const value = (row as Row)[column.name];
      if (value === undefined || (value === null && !column.nullable)) {
        throw new Error(`${spec.name} row ${i}: column '${column.name}' is ${value === null ? 'null' : 'missing'}`);
      }
      return value;
    });
    vectors[column.name] = arrow.vectorFromArray(values as never[], arrowType(column.type) as never);
  }
  return new arrow.Table(vectors);
}

/** Serialize an Arrow table to Parquet bytes (zstd). */
export function tableToParquet(table: arrow.Table): Uint8Array {
  const props = new parquet.WriterPropertiesBuilder().setCompression(parquet.Compression.ZSTD).build();
  return parquet.writeParquet(parquet.Table.fromIPCStream(arrow.tableToIPC(table, 'stream')), props);
}

/** Rows as the bytes of a Parquet file with exactly the spec's columns. */
export function encodeParquet(spec: TableSpec, rows: readonly object[]): Uint8Array {
  return tableToParquet(tableFromRows(spec, rows));
}

/** Write rows as a Parquet file atomically (temporary name, then rename). */
export function writeParquet(path: string, spec: TableSpec, rows: readonly object[]): void {
  writeFileAtomic(path, encodeParquet(spec, rows));
}

/** `writeParquet` with the file written and flushed on libuv's thread pool (the encoding runs here). */
export async function writeParquetAsync(path: string, spec: TableSpec, rows: readonly object[]): Promise<void> {
  await writeFileAtomicAsync(path, encodeParquet(spec, rows));
}

/**
 * Where a stage hands a file it produced: `path` and how to encode its bytes. The stage commands write at once
 * (`writeFileNow`); `empo train` hands the step's files to its TrainerSession, which encodes them while a worker's
 * core is free and writes them in the background (TrainerSession.writeWithStep).
 */
export type FileWriter = (path: string, encode: () => Uint8Array) => void;

/** A FileWriter that encodes and writes atomically, now. */
export const writeFileNow: FileWriter = (path, encode) => writeFileAtomic(path, encode());

/** Check that a table has every column of the spec with the right type. */
export function checkSchema(table: arrow.Table, spec: TableSpec, source: string): void {
  for (const column of spec.columns) {
    const field = table.schema.fields.find((f) => f.name === column.name);
    if (!field) {
      const found = table.schema.fields.map((f) => f.name).join(', ') || 'none';
      throw new EmpoError(`${source}: ${spec.name} table has no column '${column.name}' (${column.doc}); columns found: ${found}`);
    }
    const actual = String(field.type);
    if (actual !== typeNames[column.type]) {
      throw new EmpoError(`${source}: column '${column.name}' has type ${actual}, expected ${typeNames[column.type]}`);
    }
    if (!column.nullable && field.nullable && table.numRows > 0 && table.getChild(column.name)!.nullCount > 0) {
      throw new EmpoError(`${source}: column '${column.name}' has ${table.getChild(column.name)!.nullCount} null values; it must not have any`);
    }
  }
}

export function parquetToTable(bytes: Uint8Array, source: string): arrow.Table {
  try {
    return arrow.tableFromIPC(parquet.readParquet(bytes).intoIPCStream());
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new EmpoError(`${source}: not a readable Parquet file (${reason})`);
  }
}

/** Read a Parquet file and check it against a spec. */
export function readParquet(path: string, spec: TableSpec): arrow.Table {
  if (!existsSync(path)) throw new EmpoError(`${path}: file not found (expected a ${spec.name} Parquet file)`);
  const table = parquetToTable(readFileSync(path), path);
  checkSchema(table, spec, path);
  return table;
}

function plainValue(column: ColumnSpec, value: unknown): ColumnValue {
  if (value === null || value === undefined) return null;
  if (column.type.startsWith('list<')) return Array.from((value as arrow.Vector).toArray() as ArrayLike<number>);
  return value as ColumnValue;
}

/** The spec's columns of a table as plain JS rows (lists become number arrays). */
export function tableToRows<T = Row>(table: arrow.Table, spec: TableSpec): T[] {
  const columns = spec.columns.map((c) => [c, table.getChild(c.name)!] as const);
  const rows: T[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const row: Row = {};
    for (const [c, vector] of columns) row[c.name] = plainValue(c, vector.get(i));
    rows.push(row as T);
  }
  return rows;
}

/** Read and check a Parquet file, returning plain rows. */
export function readParquetRows<T = Row>(path: string, spec: TableSpec): T[] {
  return tableToRows<T>(readParquet(path, spec), spec);
}
