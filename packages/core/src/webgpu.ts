/**
 * WebGPU adapters through Dawn (the `webgpu` package) for TensorFlow.js's WebGPU backend.
 *
 * Two kinds of adapter:
 * - `gpu`: a real GPU, found with Dawn's default backend (Vulkan on Linux, Metal on macOS, D3D12 on Windows);
 * - `software`: Mesa's llvmpipe through Dawn's OpenGL ES backend (WebGPU compatibility mode, EGL surfaceless).
 *   It runs every shader on the CPU: slower than wasm, but it checks the WebGPU code path on any machine.
 * Nothing here imports tfjs until `activateWebgpu` is called, and nothing loads Dawn until a probe runs.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { DataType } from '@tensorflow/tfjs';
import { EmpoError } from './errors.ts';
import { log } from './log.ts';
import { hookDawnScheduler, patchReadSync } from './webgpu-sync.ts';

export type AdapterKind = 'gpu' | 'software';

/** What Dawn says about an adapter, and how it was found. */
export interface AdapterSummary {
  kind: AdapterKind;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** The Dawn backend the adapter runs on ('default' = Dawn's choice for the platform). */
  dawnBackend: string;
  featureLevel: 'core' | 'compatibility';
  /** A CPU rasteriser (llvmpipe, lavapipe, SwiftShader, WARP) or an adapter Dawn marks as fallback. */
  software: boolean;
}

/** The result of looking for one kind of adapter: the adapter, or why there is none. */
export type AdapterProbe = { ok: true; summary: AdapterSummary } | { ok: false; reason: string };

/** How `--backend webgpu` may pick: `any` (a GPU, else the software adapter), `gpu` only, `software` only. */
export type AdapterPolicy = 'any' | 'gpu' | 'software';

/** Debian packages that give Dawn a software (llvmpipe) adapter on a machine without a GPU. */
export const MESA_PACKAGES = 'libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri';

interface DawnAdapter {
  info: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
}
interface DawnGpu {
  requestAdapter(options?: Record<string, unknown>): Promise<DawnAdapter | null>;
  wgslLanguageFeatures?: unknown;
}

/** Dawn objects kept alive while the backend is in use (see releaseWebgpu). */
const held: { gpus: DawnGpu[]; active?: AdapterSummary; navigator?: { previous: PropertyDescriptor | undefined } } = { gpus: [] };

let dawn: Promise<{ create: (options: string[]) => DawnGpu; globals: object }> | undefined;

async function loadDawn(): Promise<{ create: (options: string[]) => DawnGpu; globals: object }> {
  hookDawnScheduler(); // before Dawn schedules anything: synchronous reads need its event callback
  dawn ??= import('webgpu').then((m) => {
    Object.assign(globalThis, m.globals); // GPUBufferUsage, GPUMapMode, ... that tfjs reads as globals
    return m as unknown as { create: (options: string[]) => DawnGpu; globals: object };
  });
  return dawn;
}

/** Extra Dawn options from EMPO_DAWN_OPTIONS ('backend=vulkan;adapter=nvidia-h100-80gb-hbm3'), for the gpu probe. */
function extraDawnOptions(): string[] {
  return (process.env.EMPO_DAWN_OPTIONS ?? '').split(';').map((s) => s.trim()).filter(Boolean);
}

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|software|microsoft basic render|warp/i;

export function isSoftwareAdapter(info: DawnAdapter['info'], fallback = false): boolean {
  if (fallback || info.isFallbackAdapter) return true;
  return [info.vendor, info.architecture, info.device, info.description].some((s) => s && SOFTWARE.test(s));
}

function summarize(kind: AdapterKind, adapter: DawnAdapter, dawnBackend: string, featureLevel: 'core' | 'compatibility'): AdapterSummary {
  const info = adapter.info;
  return {
    kind,
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    dawnBackend,
    featureLevel,
    software: isSoftwareAdapter(info, adapter.isFallbackAdapter === true),
  };
}

/** One line for logs: "NVIDIA H100 (vendor nvidia, architecture hopper; Dawn default backend, core)". */
export function describeAdapter(a: AdapterSummary): string {
  const name = a.device || a.description || '(unnamed adapter)';
  const details = [a.vendor && `vendor ${a.vendor}`, a.architecture && `architecture ${a.architecture}`, a.description && a.description !== name && a.description]
    .filter(Boolean).join(', ');
  const via = `Dawn ${a.dawnBackend === 'default' ? 'default backend' : a.dawnBackend}, ${a.featureLevel}`;
  return `${name} (${details ? details + '; ' : ''}${via}${a.software ? '; software, runs on the CPU' : ''})`;
}

// ---- finding shared libraries and Vulkan drivers (for the reasons we give) ----

let ldcache: string | undefined;
function ldconfigList(): string {
  if (ldcache !== undefined) return ldcache;
  for (const bin of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
    try {
      ldcache = execFileSync(bin, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      return ldcache;
    } catch {
      // try the next one
    }
  }
  ldcache = '';
  return ldcache;
}

/** Whether the dynamic loader can find `name` (Linux only; elsewhere true). */
export function hasSharedLibrary(name: string): boolean {
  if (process.platform !== 'linux') return true;
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(delimiter).filter(Boolean),
    '/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/usr/lib/aarch64-linux-gnu',
    '/lib64', '/usr/lib64', '/lib', '/usr/lib', '/usr/local/lib'];
  if (dirs.some((d) => existsSync(join(d, name)))) return true;
  return ldconfigList().includes(name + ' ');
}

/**
 * NVIDIA driver manifests that the Vulkan loader does not search by default (containers mount the driver
 * under /usr/local/nvidia).
 */
const EXTRA_NVIDIA_ICDS = ['/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json', '/usr/local/nvidia/etc/vulkan/icd.d/nvidia_icd.json'];

/**
 * When the NVIDIA manifest sits only where the loader does not look, point the loader at it (before Dawn
 * loads Vulkan). Returns the file it set, if any.
 */
export function useOffPathNvidiaIcd(): string | undefined {
  if (process.platform !== 'linux' || process.env.VK_DRIVER_FILES || process.env.VK_ICD_FILENAMES) return undefined;
  if (vulkanIcdFiles().some((f) => /nvidia/i.test(f))) return undefined;
  const file = EXTRA_NVIDIA_ICDS.find((f) => existsSync(f));
  if (file) process.env.VK_DRIVER_FILES = process.env.VK_ICD_FILENAMES = file;
  return file;
}

/** Vulkan driver manifests (ICD json files) the Vulkan loader would read. */
export function vulkanIcdFiles(): string[] {
  const override = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  if (override) return override.split(delimiter).filter(Boolean);
  const xdg = (process.env.XDG_DATA_DIRS ?? '/usr/local/share:/usr/share').split(delimiter).filter(Boolean);
  const dirs = [...new Set(['/etc/vulkan/icd.d', ...xdg.map((d) => join(d, 'vulkan/icd.d')), '/usr/share/vulkan/icd.d',
    join(homedir(), '.local/share/vulkan/icd.d')])];
  const files: string[] = [];
  for (const d of dirs) {
    try {
      for (const f of readdirSync(d)) if (f.endsWith('.json')) files.push(join(d, f));
    } catch {
      // no such folder
    }
  }
  return files;
}

/** Why a Linux machine may have no Vulkan GPU adapter, as concrete findings (empty when nothing is obviously missing). */
export function gpuProblems(): string[] {
  if (process.platform !== 'linux') return [];
  const problems: string[] = [];
  if (!hasSharedLibrary('libvulkan.so.1')) problems.push('libvulkan.so.1 (the Vulkan loader) is not installed: apt-get install libvulkan1');
  const icds = vulkanIcdFiles();
  const nvidiaDevice = existsSync('/dev/nvidia0') || existsSync('/proc/driver/nvidia/version');
  const nvidiaIcd = icds.find((f) => /nvidia/i.test(f));
  if (nvidiaDevice && !nvidiaIcd) {
    problems.push('an NVIDIA GPU is present (/dev/nvidia0) but no nvidia_icd.json Vulkan driver manifest was found in ' +
      '/usr/share/vulkan/icd.d or /etc/vulkan/icd.d: install the driver\'s Vulkan part (Debian/Ubuntu: the libnvidia-gl-<version> ' +
      'package matching the driver), or in a container run with NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics (or all)');
  } else if (nvidiaIcd) {
    try {
      const lib = (JSON.parse(readFileSync(nvidiaIcd, 'utf8')) as { ICD?: { library_path?: string } }).ICD?.library_path;
      if (lib && !lib.includes('/') && !hasSharedLibrary(lib)) {
        problems.push(`${nvidiaIcd} names ${lib}, which the loader cannot find (the driver's GL/Vulkan libraries are not installed or not mounted)`);
      } else if (lib && lib.includes('/') && !existsSync(lib)) {
        problems.push(`${nvidiaIcd} names ${lib}, which does not exist`);
      }
    } catch {
      problems.push(`${nvidiaIcd} is not readable JSON`);
    }
  } else if (!nvidiaDevice && icds.length === 0 && hasGpuDevice()) {
    problems.push('no Vulkan driver manifest (ICD json) in /usr/share/vulkan/icd.d or /etc/vulkan/icd.d');
  }
  if (!hasGpuDevice()) problems.unshift('no GPU device node (/dev/nvidia0, /dev/dri or /dev/dxg)');
  return problems;
}

/** Whether Linux shows any GPU device node (NVIDIA, DRM, or WSL's /dev/dxg). Elsewhere true. */
export function hasGpuDevice(): boolean {
  if (process.platform !== 'linux') return true;
  return ['/dev/nvidia0', '/dev/nvidiactl', '/dev/dri', '/dev/dxg'].some((p) => existsSync(p));
}

// ---- probing ----

async function request(kind: AdapterKind): Promise<{ gpu: DawnGpu; adapter: DawnAdapter; summary: AdapterSummary } | { reason: string }> {
  let m;
  try {
    m = await loadDawn();
  } catch (error) {
    return { reason: `the webgpu package (Dawn for Node) failed to load: ${(error as Error).message.split('\n')[0]}` };
  }
  if (kind === 'gpu') {
    // On Linux, skip Dawn (and its warnings) when there is plainly no GPU to find.
    if (process.platform === 'linux' && (!hasGpuDevice() || !hasSharedLibrary('libvulkan.so.1'))) return { reason: gpuProblems().join('; ') };
    const icd = useOffPathNvidiaIcd();
    if (icd) log.info(`webgpu: using the NVIDIA Vulkan driver manifest ${icd} (VK_DRIVER_FILES)`);
    const options = extraDawnOptions();
    const backend = options.find((o) => o.startsWith('backend='))?.slice('backend='.length) ?? 'default';
    let gpu: DawnGpu;
    try {
      gpu = m.create(options);
    } catch (error) {
      return { reason: `Dawn rejected EMPO_DAWN_OPTIONS: ${(error as Error).message}` };
    }
    let failure = '';
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' }).catch((error: Error) => {
      failure = error.message;
      return null;
    });
    if (!adapter) {
      if (failure) return { reason: `Dawn's adapter request failed: ${failure}` };
      const found = gpuProblems();
      return { reason: `Dawn found no GPU adapter${found.length ? ': ' + found.join('; ') : ' (the Vulkan driver may not support WebGPU\'s requirements; see the warnings Dawn printed above)'}` };
    }
    const summary = summarize('gpu', adapter, backend, 'core');
    if (summary.software) return { reason: `the only adapter Dawn found is a software one: ${describeAdapter(summary)}` };
    return { gpu, adapter, summary };
  }
  if (process.platform === 'linux') {
    const missing = ['libEGL.so.1', 'libEGL_mesa.so.0'].filter((l) => !hasSharedLibrary(l));
    if (missing.length) return { reason: `${missing.join(' and ')} not found (Mesa's EGL): apt-get install ${MESA_PACKAGES}` };
  }
  // Mesa's EGL without a display: must be set before Dawn first opens EGL.
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const gpu = m.create(['backend=opengles']);
  const adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' }).catch(() => null);
  if (!adapter) return { reason: `Dawn's OpenGL ES backend found no adapter (is Mesa's llvmpipe installed? apt-get install ${MESA_PACKAGES})` };
  return { gpu, adapter, summary: summarize('software', adapter, 'opengles', 'compatibility') };
}

/** Look for one kind of adapter without activating anything (for `empo backends` and `auto`). */
export async function probeAdapter(kind: AdapterKind): Promise<AdapterProbe> {
  const found = await request(kind);
  return 'reason' in found ? { ok: false, reason: found.reason } : { ok: true, summary: found.summary };
}

/** The adapter policy from EMPO_WEBGPU_ADAPTER (any, gpu, software). */
export function adapterPolicy(): AdapterPolicy {
  const value = process.env.EMPO_WEBGPU_ADAPTER ?? 'any';
  if (value !== 'any' && value !== 'gpu' && value !== 'software') {
    throw new EmpoError(`EMPO_WEBGPU_ADAPTER must be any, gpu or software, got '${value}'`);
  }
  return value;
}

/**
 * Make TensorFlow.js's WebGPU backend run on a Dawn adapter and switch tfjs to it: a GPU when there is one,
 * else (policy `any`) the software adapter. Returns the adapter; throws an EmpoError naming what to install.
 */
export async function activateWebgpu(policy: AdapterPolicy = 'any'): Promise<AdapterSummary> {
  const tf = await import('@tensorflow/tfjs');
  if (held.active && (policy === 'any' || policy === held.active.kind)) {
    // Already set up in this process (a second selectBackend, or a switch back from another backend).
    if (!(await tf.setBackend('webgpu'))) throw new EmpoError(`backend 'webgpu' failed to initialize on ${describeAdapter(held.active)}`);
    return held.active;
  }
  if (held.active) throw new EmpoError(`backend 'webgpu' is already running on ${describeAdapter(held.active)} in this process; EMPO_WEBGPU_ADAPTER=${policy} cannot switch it`);
  const reasons: string[] = [];
  let found: { gpu: DawnGpu; adapter: DawnAdapter; summary: AdapterSummary } | undefined;
  for (const kind of policy === 'any' ? (['gpu', 'software'] as const) : [policy]) {
    const r = await request(kind);
    if ('reason' in r) reasons.push(`${kind === 'gpu' ? 'GPU' : 'software adapter'}: ${r.reason}`);
    else {
      found = r;
      break;
    }
  }
  if (!found) {
    if (policy === 'gpu') {
      throw new EmpoError(`backend 'webgpu' (--backend webgpu) found no GPU adapter, and EMPO_WEBGPU_ADAPTER=gpu rules out the software one. ${reasons.join('. ')}. See docs/GPU.md`);
    }
    throw new EmpoError(
      `backend 'webgpu' (--backend webgpu) found no WebGPU adapter. ${reasons.join('. ')}. ` +
        `On a machine without a GPU, install Mesa (apt-get install ${MESA_PACKAGES}) for the software adapter; ` +
        'for an NVIDIA GPU see docs/GPU.md; or use --backend wasm',
    );
  }
  const { gpu, adapter, summary } = found;
  held.gpus.push(gpu);
  // tfjs-backend-webgpu registers itself only when navigator.gpu exists, and asks navigator.gpu for an
  // adapter without a featureLevel; hand it the adapter chosen here instead.
  const shim = { requestAdapter: async () => adapter, wgslLanguageFeatures: gpu.wgslLanguageFeatures, getPreferredCanvasFormat: () => 'rgba8unorm' };
  const previous = (globalThis as { navigator?: object }).navigator;
  held.navigator = { previous: Object.getOwnPropertyDescriptor(globalThis, 'navigator') };
  Object.defineProperty(globalThis, 'navigator', {
    value: Object.assign(Object.create(previous ?? null) as object, { gpu: shim }), configurable: true, writable: true,
  });
  const webgpuModule = (await import('@tensorflow/tfjs-backend-webgpu')) as unknown as { WebGPUBackend: { prototype: object } };
  patchReadSync(webgpuModule.WebGPUBackend, (bytes, dtype) => tf.util.convertBackendValuesAndArrayBuffer(bytes, dtype as DataType));
  if (tf.findBackendFactory('webgpu') === null) throw new EmpoError("backend 'webgpu': @tensorflow/tfjs-backend-webgpu did not register (navigator.gpu was not set before it loaded)");
  if (!(await tf.setBackend('webgpu'))) throw new EmpoError(`backend 'webgpu' failed to initialize on ${describeAdapter(summary)}`);
  await tf.ready();
  held.active = summary;
  return summary;
}

/** Drop the Dawn objects so that the process can exit (Dawn keeps the event loop alive while referenced). */
export async function releaseWebgpu(): Promise<void> {
  if (held.gpus.length === 0 && !held.navigator) return;
  if (held.active) {
    const tf = await import('@tensorflow/tfjs');
    try {
      if (tf.findBackend('webgpu')) tf.removeBackend('webgpu'); // disposes the backend's buffers and device
    } catch {
      // already gone
    }
  }
  held.gpus.length = 0;
  held.active = undefined;
  if (held.navigator) {
    if (held.navigator.previous) Object.defineProperty(globalThis, 'navigator', held.navigator.previous);
    else delete (globalThis as { navigator?: object }).navigator;
    held.navigator = undefined;
  }
}

/** Whether this process loaded Dawn (to probe or to run): then it may need help to exit, see releaseWebgpu. */
export function dawnLoaded(): boolean {
  return dawn !== undefined;
}

/** The adapter the webgpu backend runs on in this process, if it was activated. */
export function activeAdapter(): AdapterSummary | undefined {
  return held.active;
}
