#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx's loader: no build step after `npm ci`.
// TensorFlow.js is loaded first, without the loader: through it, its bundles hold about three times the heap
// (some 28 MB more), and every full garbage collection marks all of it.
import '@tensorflow/tfjs';
import { register } from 'tsx/esm/api';

register();
const { main, exitIfDawnLoaded } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
// With Dawn loaded (--backend webgpu), the process ends here, without finalizing Dawn's objects (see there).
await exitIfDawnLoaded(process.exitCode);
