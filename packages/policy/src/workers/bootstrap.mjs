// Entry of a PolicyWorkers thread: the sources are TypeScript run without a build step, so register tsx's
// loader in this thread (loader hooks of the parent thread do not reach workers), then load the worker.
// TensorFlow.js is loaded first, without the loader: through it, its bundles would hold ~3x the heap (28 MB
// more per thread), and every full garbage collection marks all of it.
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
