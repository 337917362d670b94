// Entry of a PolicyWorkers thread: the sources are TypeScript run without a build step, so register tsx's
// loader in this thread (loader hooks of the parent thread do not reach workers), then load the worker.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
