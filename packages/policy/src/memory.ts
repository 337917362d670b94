/**
 * Memory reporting for the pipeline stages: the process's resident set (now and peak) and what tfjs holds.
 * Peak RSS is the kernel's high-water mark (VmHWM in /proc/self/status on Linux); elsewhere the largest RSS
 * seen by calls to these functions.
 */
import { readFileSync, writeFileSync } from 'node:fs';

let seenPeak = 0;

function procStatusKB(field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Resident set size now, in MB (1 MB = 2^20 bytes). */
export function rssMB(): number {
  const rss = process.memoryUsage.rss() / 2 ** 20;
  seenPeak = Math.max(seenPeak, rss);
  return rss;
}

/** Peak resident set size of this process so far (since start, or since {@link resetPeakMemory}), in MB. */
export function peakMemoryMB(): number {
  const now = rssMB();
  const hwm = procStatusKB('VmHWM');
  return Math.max(now, hwm === null ? seenPeak : hwm / 1024);
}

/**
 * Restart the peak measurement (Linux: writes 5 to /proc/self/clear_refs, which resets VmHWM). Returns false
 * where that is not possible (the peak then stays the process's peak).
 */
export function resetPeakMemory(): boolean {
  seenPeak = 0;
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

export interface MemoryReport {
  /** Resident set now (MB). */
  rssMB: number;
  /** Peak resident set (MB). */
  peakRssMB: number;
  /** V8 heap in use (MB). */
  heapUsedMB: number;
  /** ArrayBuffers outside the V8 heap (MB): host tensors, file buffers, the wasm memory. */
  arrayBuffersMB: number;
  /** Bytes held by tfjs tensors (MB), when tfjs is loaded. */
  tensorMB: number | null;
  /** Live tfjs tensors. */
  tensors: number | null;
}

/** A snapshot for logs; pass the tfjs module to include what tensors hold. */
export function memoryReport(tf?: { memory(): { numBytes: number; numTensors: number } }): MemoryReport {
  const m = process.memoryUsage();
  const tfm = tf?.memory();
  return {
    rssMB: rssMB(),
    peakRssMB: peakMemoryMB(),
    heapUsedMB: m.heapUsed / 2 ** 20,
    arrayBuffersMB: m.arrayBuffers / 2 ** 20,
    tensorMB: tfm ? tfm.numBytes / 2 ** 20 : null,
    tensors: tfm ? tfm.numTensors : null,
  };
}

/** "rss 812 MB (peak 1,204 MB)": for a log line. */
export function formatMemory(r: MemoryReport = memoryReport()): string {
  const mb = (x: number) => `${Math.round(x).toLocaleString('en-US')} MB`;
  return `rss ${mb(r.rssMB)} (peak ${mb(r.peakRssMB)})${r.tensorMB !== null ? `, tensors ${mb(r.tensorMB)}` : ''}`;
}
