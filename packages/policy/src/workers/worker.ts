/**
 * The body of a PolicyWorkers thread: its own tfjs backend instance (the parent's backend name), a replica of
 * the model's weights (per slot, synced from the parent through a SharedArrayBuffer), and task handlers: the
 * built-in `generate`, plus those of the task modules named at start. Messages are handled one at a time, in
 * order, so a sync always completes before the tasks sent after it.
 */
import { readlinkSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendName } from '@empo/core';
import { generate, resumeGenerate, type GenerateOptions, type HandoffControl, type RowHandoff } from '../generate.ts';
import type { HandoffSignal } from './split-generate.ts';
import { INIT_ID, type FromWorker, type InitMessage, type InitReply, type SyncMessage, type TaskContext, type TaskHandler, type TaskModule, type ToWorker, type WorkerModel } from './protocol.ts';

const port = parentPort!;
const handlers = new Map<string, TaskHandler>();
const slots = new Map<string, Map<string, tf.Variable>>();
let model: WorkerModel | null = null;

/** The HandoffControl of a task: polls its signal slot (and clears it), posts the rows handed over as progress. */
function handoffControl(at: HandoffSignal | undefined, context: TaskContext): HandoffControl | undefined {
  if (!at) return undefined;
  const signal = new Int32Array(at.signal);
  return {
    poll: () => Atomics.load(signal, at.slot) === 1 && Atomics.exchange(signal, at.slot, 0) === 1,
    send: (h: RowHandoff) => context.post(h, [h.cache.data.buffer as ArrayBuffer]),
  };
}

/** Built-in tasks. */
const builtins: Record<string, TaskHandler> = {
  /** generate() on the synced policy weights. */
  generate: (m, { prompts, opts, handoff }: { prompts: number[][]; opts: GenerateOptions; handoff?: HandoffSignal }, context) =>
    generate(m, prompts, opts, handoffControl(handoff, context)),
  /** resumeGenerate(): rows another generate task handed over. */
  'generate.resume': (m, { rows, handoff }: { rows: RowHandoff; handoff?: HandoffSignal }, context) => resumeGenerate(m, rows, handoffControl(handoff, context)),
};

/** This thread's operating-system thread id, where /proc/thread-self names it (Linux); else null. */
function osThreadId(): number | null {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : null;
  } catch {
    return null;
  }
}

async function init(msg: InitMessage): Promise<InitReply> {
  await selectBackend(msg.backend as BackendName, true);
  for (const [name, h] of Object.entries(builtins)) handlers.set(name, h);
  for (const url of msg.taskModules) {
    const mod = (await import(url)) as TaskModule;
    for (const [name, h] of Object.entries(mod.tasks)) handlers.set(name, h);
  }
  const weightsOf = (slot: string) => {
    const w = slots.get(slot);
    if (!w) throw new Error(`worker: weights '${slot}' were never synced`);
    return w;
  };
  model = {
    config: msg.config,
    padId: msg.padId,
    stopIds: new Set(msg.stopIds),
    get weights() {
      return weightsOf('policy');
    },
    weightsOf,
  };
  return { osThreadId: osThreadId() };
}

/** Copy the tensors out of the shared buffer into this thread's variables (created on the first sync). */
function sync(msg: SyncMessage): void {
  let vars = slots.get(msg.slot);
  if (!vars) slots.set(msg.slot, (vars = new Map()));
  for (const t of msg.layout) {
    // A private copy, since the parent rewrites the buffer: tfjs-wasm copies what it is given onto its heap at
    // once; other backends may keep the array itself, so they get a slice.
    const shared = new Float32Array(msg.buffer, t.offset * 4, t.size);
    const data = tf.getBackend() === 'wasm' ? shared : shared.slice();
    const v = vars.get(t.name);
    if (v) tf.tidy(() => v.assign(tf.tensor(data, t.shape, 'float32')));
    else vars.set(t.name, tf.tidy(() => tf.variable(tf.tensor(data, t.shape, 'float32'), true)));
  }
}

/** The ArrayBuffers of the typed arrays in a result (a few levels deep), moved instead of copied. */
function transferables(value: unknown, depth = 3, out = new Set<ArrayBuffer>()): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer) out.add(value.buffer);
  } else if (depth > 0 && value && typeof value === 'object') {
    for (const v of Array.isArray(value) ? value : Object.values(value)) transferables(v, depth - 1, out);
  }
  return [...out];
}

/**
 * Why the last weight sync failed, or null: the parent does not wait for syncs, so the tasks after a failed one
 * fail with its error (instead of computing with the weights of before) until a sync succeeds.
 */
let syncError: Error | null = null;

async function handle(msg: ToWorker): Promise<void> {
  const id = msg.type === 'init' ? INIT_ID : msg.id;
  try {
    let value: unknown = null;
    if (msg.type === 'init') value = await init(msg);
    else if (msg.type === 'sync') {
      syncError = null;
      try {
        sync(msg);
      } catch (e) {
        syncError = e instanceof Error ? e : new Error(String(e));
        throw e;
      }
    } else {
      if (syncError) throw new Error(`worker: task '${msg.task}' not run: the weights' last sync failed (${syncError.message})`);
      const h = handlers.get(msg.task);
      if (!h) throw new Error(`worker: unknown task '${msg.task}'`);
      if (!model) throw new Error('worker: not initialised');
      const context: TaskContext = {
        post: (value, transfer = []) => port.postMessage({ type: 'progress', id, value } satisfies FromWorker, transfer),
      };
      value = await (h as (m: WorkerModel, p: unknown, c: TaskContext) => unknown)(model, msg.payload, context);
    }
    const reply: FromWorker = { type: 'result', id, value };
    port.postMessage(reply, transferables(value));
  } catch (e) {
    const err = e as Error;
    const reply: FromWorker = { type: 'error', id, message: err?.message ?? String(e), stack: err?.stack };
    port.postMessage(reply);
  }
}

let queue = Promise.resolve();
port.on('message', (msg: ToWorker) => {
  queue = queue.then(() => handle(msg));
});
