/**
 * tfjs backend selection for code that uses this package directly (tests, scripts).
 * Everything in this package works on any backend; 'wasm' is the fast one on CPU-only Node.
 * The pipeline stages use core's selectBackend, which this delegates to.
 */
import { selectBackend, type BackendName } from '@empo/core';

export type { BackendName };

/** Switch tfjs to `name` (default 'wasm') and wait until it is ready. */
export async function useBackend(name: BackendName = 'wasm'): Promise<void> {
  await selectBackend(name, true);
}
