import { EmpoError } from './errors.ts';
import { tuneGarbageCollector } from './gc.ts';
import { log } from './log.ts';
import { activateWebgpu, adapterPolicy, describeAdapter, probeAdapter, releaseWebgpu, type AdapterSummary } from './webgpu.ts';

/** The backends a config or `--backend` may name. */
export const BACKEND_NAMES = ['auto', 'wasm', 'cpu', 'webgpu', 'tensorflow'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** Validate a backend name from a flag or file; the error names `where` and lists the allowed names. */
export function parseBackendName(where: string, text: string): BackendName {
  if ((BACKEND_NAMES as readonly string[]).includes(text)) return text as BackendName;
  throw new EmpoError(`${where}: unknown backend '${text}' (allowed: ${BACKEND_NAMES.join(', ')})`);
}

/** What selectBackend chose, for logs and `empo backends`. */
export interface BackendChoice {
  /** tfjs's name of the active backend: wasm, cpu, webgpu or tensorflow. */
  backend: string;
  requested: BackendName;
  /** The WebGPU adapter (backend webgpu). */
  adapter?: AdapterSummary;
  /** The npm package behind backend tensorflow. */
  tfjsNode?: string;
  /** Why `auto` passed over tensorflow and webgpu. */
  notes: string[];
}

let last: BackendChoice | undefined;

/** The package of tfjs-node(-gpu) that imports, if any (the GPU build first). */
export async function findTfjsNode(): Promise<{ name: string } | { error: string }> {
  const errors: string[] = [];
  for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(name);
      return { name };
    } catch (error) {
      const code = (error as { code?: string }).code;
      errors.push(code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' ? `${name} is not installed` : `${name} failed to load: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  return { error: errors.join('; ') };
}

async function activate(name: 'wasm' | 'cpu' | 'tensorflow'): Promise<string | undefined> {
  const tf = await import('@tensorflow/tfjs');
  let tfjsNode: string | undefined;
  if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (name === 'tensorflow') {
    const found = await findTfjsNode();
    if ('error' in found) {
      throw new EmpoError(
        `backend 'tensorflow' (--backend tensorflow) needs @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu: ${found.error} ` +
          '(their install downloads libtensorflow; see docs/GPU.md); use --backend wasm',
      );
    }
    tfjsNode = found.name;
  }
  if (!(await tf.setBackend(name))) throw new EmpoError(`backend '${name}' failed to initialize`);
  await tf.ready();
  // The cpu backend prints an advertisement for tfjs-node on first use; the choice is logged below instead.
  if (name === 'cpu') (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  return tfjsNode;
}

/**
 * Select the TensorFlow.js backend. `auto` picks tfjs-node(-gpu) when it imports, else webgpu when Dawn finds
 * a real (not software) GPU adapter, else wasm. `webgpu` takes a GPU adapter, else Mesa's software adapter
 * (EMPO_WEBGPU_ADAPTER=gpu forbids that). The choice and the adapter are logged, so every run says what it
 * computed on. tfjs is imported lazily so that packages using only core's files and schemas do not load it.
 * Also sets V8's heap growing factor for tensor work (gc.ts, EMPO_HEAP_GROWING_PERCENT).
 */
export async function selectBackend(name: BackendName, quiet = false): Promise<string> {
  parseBackendName('backend', name);
  tuneGarbageCollector();
  const choice: BackendChoice = { backend: name, requested: name, notes: [] };
  if (name === 'auto') {
    const node = await findTfjsNode();
    if ('name' in node) {
      choice.tfjsNode = await activate('tensorflow');
    } else {
      choice.notes.push(node.error.replace(/@tensorflow\/tfjs-node-gpu is not installed; @tensorflow\/tfjs-node is not installed/, 'tfjs-node not installed'));
      const gpu = await probeAdapter('gpu');
      if (gpu.ok) {
        choice.adapter = await activateWebgpu('gpu');
      } else {
        choice.notes.push(`no GPU adapter: ${gpu.reason}`);
        await activate('wasm');
      }
    }
  } else if (name === 'webgpu') {
    choice.adapter = await activateWebgpu(adapterPolicy());
  } else {
    choice.tfjsNode = await activate(name);
  }
  const tf = await import('@tensorflow/tfjs');
  choice.backend = tf.getBackend();
  last = choice;
  if (!quiet) log.info(`tensor backend: ${describeChoice(choice)}`);
  if (choice.adapter?.software && !quiet) {
    log.warn('webgpu runs on a software adapter (every shader on the CPU): slower than --backend wasm; use it to check the WebGPU code path');
  }
  return choice.backend;
}

/** "webgpu (auto) on NVIDIA H100 (...)", "wasm (auto: tfjs-node not installed; no GPU adapter: ...)". */
export function describeChoice(c: BackendChoice): string {
  const auto = c.requested === 'auto' ? (c.notes.length ? ` (auto: ${c.notes.join('; ')})` : ' (auto)') : '';
  const on = c.adapter ? ` on ${describeAdapter(c.adapter)}` : c.tfjsNode ? ` (${c.tfjsNode})` : '';
  return `${c.backend}${on}${auto}`;
}

/** The last selectBackend choice in this process. */
export function backendChoice(): BackendChoice | undefined {
  return last;
}

/**
 * Release what keeps the process alive after the work is done (Dawn's GPU instance). Call it once, at the
 * end of a command: the webgpu backend cannot be selected again in the same process afterwards.
 */
export async function releaseBackend(): Promise<void> {
  await releaseWebgpu();
}
