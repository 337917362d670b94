#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx's loader: no build step after `npm ci`.
// TensorFlow.js is loaded first, without the loader: through it, its bundles hold about three times the heap
// (some 28 MB more), and every full garbage collection marks all of it.
import '@tensorflow/tfjs';
import { register } from 'tsx/esm/api';

register();
const { main, shutdown } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
// Release what could keep the process alive once the command is done (Dawn's GPU instance, for --backend
// webgpu); should anything still hold the event loop, exit anyway a moment later.
if (await shutdown()) setTimeout(() => process.exit(), 2000).unref();
