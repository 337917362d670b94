import { EmpoError } from './errors.ts';
import { log } from './log.ts';

export type BackendName = 'auto' | 'wasm' | 'cpu' | 'webgpu' | 'tensorflow';

async function tryImport(specifier: string): Promise<boolean> {
  try {
    await import(specifier);
    return true;
  } catch {
    return false;
  }
}

async function activate(name: 'wasm' | 'cpu' | 'tensorflow' | 'webgpu'): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (name === 'tensorflow' && !(await tryImport('@tensorflow/tfjs-node-gpu')) && !(await tryImport('@tensorflow/tfjs-node'))) {
    throw new EmpoError(
      "backend 'tensorflow' needs @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu, which is not installed " +
        '(its install downloads libtensorflow); use --backend wasm',
    );
  }
  if (name === 'webgpu') {
    throw new EmpoError("backend 'webgpu' is not available in this version yet; use --backend wasm (CPU)");
  }
  if (!(await tf.setBackend(name))) throw new EmpoError(`backend '${name}' failed to initialize`);
  await tf.ready();
  // The cpu backend prints an advertisement for tfjs-node on first use; the choice is logged below instead.
  if (name === 'cpu') (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
}

/**
 * Select the TensorFlow.js backend. `auto` picks tfjs-node when installed, else wasm.
 * The choice is logged, so every run says what it computed on. tfjs is imported lazily so that
 * packages using only core's files and schemas do not load it.
 */
export async function selectBackend(name: BackendName, quiet = false): Promise<string> {
  if (name === 'auto') {
    const hasNode = (await tryImport('@tensorflow/tfjs-node-gpu')) || (await tryImport('@tensorflow/tfjs-node'));
    await activate(hasNode ? 'tensorflow' : 'wasm');
  } else {
    await activate(name);
  }
  const tf = await import('@tensorflow/tfjs');
  const chosen = tf.getBackend();
  if (!quiet) log.info(`tensor backend: ${chosen}${name === 'auto' ? ' (auto)' : ''}`);
  return chosen;
}
