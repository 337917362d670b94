// Entry of a PolicyWorkers thread: the sources are TypeScript run without a build step, so register tsx's
// loader in this thread (the pool starts it without the parent's Node options and loader hooks), then load the worker.
// TensorFlow.js is loaded first, without the loader: through it, its bundles hold about three times the heap
// (some 28 MB more), and every full garbage collection marks all of it.
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
