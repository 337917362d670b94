/**
 * Backend names and selection: validation with the allowed names, software-adapter detection, what `auto`
 * picks and says, and the errors for backends this machine lacks. (The webgpu numerics are in
 * test/webgpu.test.ts.)
 */
import { afterEach, describe, expect, test } from 'vitest';
import {
  BACKEND_NAMES, adapterPolicy, backendChoice, describeAdapter, describeChoice, findTfjsNode, isSoftwareAdapter,
  parseBackendName, parseConfig, probeAdapter, selectBackend,
} from '../src/index.ts';

afterEach(() => {
  delete process.env.EMPO_WEBGPU_ADAPTER;
});

describe('backend names', () => {
  test('the config key and the flags accept exactly the five names', () => {
    expect(BACKEND_NAMES).toEqual(['auto', 'wasm', 'cpu', 'webgpu', 'tensorflow']);
    for (const name of BACKEND_NAMES) expect(parseConfig({ backend: name }).backend).toBe(name);
    expect(parseConfig({}).backend).toBe('wasm');
    expect(() => parseConfig({ backend: 'gpu' })).toThrow(/backend/);
    expect(parseBackendName('--backend', 'webgpu')).toBe('webgpu');
    expect(() => parseBackendName('--backend', 'cuda')).toThrow("--backend: unknown backend 'cuda' (allowed: auto, wasm, cpu, webgpu, tensorflow)");
  });

  test('EMPO_WEBGPU_ADAPTER is any, gpu or software', () => {
    expect(adapterPolicy()).toBe('any');
    process.env.EMPO_WEBGPU_ADAPTER = 'gpu';
    expect(adapterPolicy()).toBe('gpu');
    process.env.EMPO_WEBGPU_ADAPTER = 'nvidia';
    expect(() => adapterPolicy()).toThrow("EMPO_WEBGPU_ADAPTER must be any, gpu or software, got 'nvidia'");
  });
});

describe('adapters', () => {
  test('CPU rasterisers and fallback adapters count as software', () => {
    expect(isSoftwareAdapter({ device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'OpenGL ES 3.2 Mesa 22.3.6' })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'mesa', device: 'llvmpipe (LLVM 17.0.6, 256 bits)' })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'google', architecture: 'swiftshader', device: 'SwiftShader Device (Subzero)' })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'nvidia', device: 'NVIDIA H100 80GB HBM3' }, true)).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H100 80GB HBM3', description: 'NVIDIA: 550.54.15', isFallbackAdapter: false })).toBe(false);
  });

  test('an adapter is described with its name, vendor and Dawn backend', () => {
    const text = describeAdapter({ kind: 'gpu', vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H100 80GB HBM3', description: 'NVIDIA: 550.54.15', dawnBackend: 'default', featureLevel: 'core', software: false });
    expect(text).toBe('NVIDIA H100 80GB HBM3 (vendor nvidia, architecture hopper, NVIDIA: 550.54.15; Dawn default backend, core)');
    expect(describeChoice({ backend: 'wasm', requested: 'auto', notes: ['tfjs-node not installed', 'no GPU adapter: no GPU device node'] }))
      .toBe('wasm (auto: tfjs-node not installed; no GPU adapter: no GPU device node)');
  });
});

describe('selection', () => {
  test('auto picks tensorflow if it imports, else a real GPU adapter, else wasm, and says why', async () => {
    const node = await findTfjsNode();
    const gpu = await probeAdapter('gpu');
    const chosen = await selectBackend('auto', true);
    expect(chosen).toBe('name' in node ? 'tensorflow' : gpu.ok ? 'webgpu' : 'wasm');
    const choice = backendChoice()!;
    expect(choice.requested).toBe('auto');
    if (chosen === 'wasm') {
      expect(choice.notes.join(' ')).toMatch(/tfjs-node/);
      expect(choice.notes.join(' ')).toMatch(/no GPU adapter: \S/);
    }
    if (chosen === 'webgpu') expect(choice.adapter?.software).toBe(false);
  });

  test('tensorflow without tfjs-node is an error that names the flag and the packages', async () => {
    if ('name' in (await findTfjsNode())) return; // installed here: nothing to check
    await expect(selectBackend('tensorflow', true)).rejects.toThrow(/--backend tensorflow\) needs @tensorflow\/tfjs-node or @tensorflow\/tfjs-node-gpu.*--backend wasm/);
  });

  test('webgpu without a usable adapter is an error that names the flag and what to install', async () => {
    if ((await probeAdapter('gpu')).ok) return; // a GPU here: EMPO_WEBGPU_ADAPTER=gpu would succeed
    process.env.EMPO_WEBGPU_ADAPTER = 'gpu';
    await expect(selectBackend('webgpu', true)).rejects.toThrow(/^backend 'webgpu' \(--backend webgpu\) found no GPU adapter, and EMPO_WEBGPU_ADAPTER=gpu rules out the software one\. GPU: \S.*See docs\/GPU\.md$/);
  });

  test('wasm and cpu select and report themselves', async () => {
    expect(await selectBackend('cpu', true)).toBe('cpu');
    expect(backendChoice()).toEqual({ backend: 'cpu', requested: 'cpu', notes: [] });
    expect(await selectBackend('wasm', true)).toBe('wasm');
  });
});
