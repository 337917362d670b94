/**
 * PolicyWorkers: worker threads that each run their own tfjs backend on a replica of a model, to use several
 * cores (tfjs' wasm backend is single-threaded in Node). The parent keeps the model of record; it copies the
 * weights to the workers (`syncWeights`, through one SharedArrayBuffer per slot) and hands out tasks, each to
 * the next idle worker. Results never depend on which worker ran a task or on how many workers there are: a
 * task computes the same thing on any of them (same backend, same kernels, same inputs), and callers cut their
 * work into parts that do not depend on the worker count (see `generate` and the trainer's micro-batches).
 *
 *   const workers = await PolicyWorkers.start({ workers: 2, backend: tf.getBackend(), model: policy });
 *   const out = await workers.generate(policy, prompts, { maxNewTokens: 48, temperature: 1, seed: 1 });
 *   await workers.close();
 *
 * Idle workers do not keep the process alive; `close()` ends them.
 */
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker, type TransferListItem } from 'node:worker_threads';
import type * as tf from '@tensorflow/tfjs';
import { log } from '@empo/core';
import type { ModelConfig } from '../config.ts';
import { readInto } from '../kernels/copy.ts';
import { rowSeeds, type GenerateOptions, type GenerateResult, type GenerationModel } from '../generate.ts';
import { splitGenerate, type HandoffMode } from './split-generate.ts';
import { INIT_ID, type FromWorker, type InitReply, type TensorSlot, type ToWorker } from './protocol.ts';

export interface PolicyWorkersOptions {
  /** Worker threads to start (at least 1). */
  workers: number;
  /** tfjs backend the workers select: the parent's (`tf.getBackend()`). */
  backend: string;
  /** The model the workers replicate (its config, pad and stop ids; weights come with `syncWeights`). */
  model: { readonly config: ModelConfig; readonly padId: number; readonly stopIds: ReadonlySet<number> };
  /** Modules (file URLs or paths) whose `tasks` export adds task handlers (see protocol.ts, TaskModule). */
  taskModules?: (string | URL)[];
}

/** Default worker count: one per core, at most 4, on the CPU backends (wasm, cpu); 1 on the others. */
export function defaultWorkerCount(backend: string): number {
  return backend === 'wasm' || backend === 'cpu' ? Math.max(1, Math.min(4, availableParallelism())) : 1;
}

/**
 * `count` workers when count >= 2, else null (the caller computes in its own thread, which is what one worker
 * would do, without the copy of the model). Logs how many started and how long it took.
 */
export async function startWorkers(count: number, opts: Omit<PolicyWorkersOptions, 'workers'>): Promise<PolicyWorkers | null> {
  if (count < 2) return null;
  const start = Date.now();
  const workers = await PolicyWorkers.start({ ...opts, workers: count });
  log.info(`workers: ${count} threads (${opts.backend}), started in ${((Date.now() - start) / 1000).toFixed(1)}s`);
  return workers;
}

/** A finished task, as `PolicyWorkers.takeTaskLog` lists it. */
export interface TaskRecord {
  /** The worker thread that ran it (index in worker order). */
  thread: number;
  /** The task's name ('generate', or a task module's, e.g. 'trainer.gradient'). */
  task: string;
  /** When it was handed to the thread and when its reply (result or error) arrived, in this thread's performance.now() ms. */
  start: number;
  end: number;
  failed: boolean;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  /** What the task posts while it runs (TaskContext.post). */
  progress?: (value: unknown) => void;
}

interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Runs a task now (tasks are given to idle threads only; syncs go to every thread). */
  busy: boolean;
  failed: Error | null;
  /** Milliseconds of finished tasks (from hand-out to reply), and when the running one was handed out. */
  taskMs: number;
  taskSince: number;
}

interface QueuedTask {
  message: { type: 'task'; task: string; payload: unknown };
  transfer: TransferListItem[];
  pending: Pending;
}

const BOOTSTRAP = new URL('./bootstrap.mjs', import.meta.url);
const ENTRY = new URL('./worker.ts', import.meta.url);

export class PolicyWorkers {
  private nextId = INIT_ID + 1;
  private readonly queue: QueuedTask[] = [];
  /** Tasks queued or running, and who waits for that count to reach 0. */
  private active = 0;
  private busySince = 0;
  private busyTotal = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly buffers = new Map<string, { buffer: SharedArrayBuffer; synced: object[] }>();
  /** Per slot, the workers' replies to its last sync (settled once each worker has copied the buffer). */
  private readonly syncReplies = new Map<string, Promise<void>>();
  private closed = false;
  /** Finished tasks since recordTasks() (null: not recording). */
  private taskLog: TaskRecord[] | null = null;

  /** Each worker's operating-system thread id where the platform names it (Linux), else null; set by start(). */
  private threadIds: readonly (number | null)[] = [];

  private constructor(private readonly threads: Thread[]) {}

  /** Start the workers and wait until each has loaded its backend and task modules. */
  static async start(opts: PolicyWorkersOptions): Promise<PolicyWorkers> {
    if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new Error(`PolicyWorkers: workers must be a positive integer, got ${opts.workers}`);
    const threads: Thread[] = Array.from({ length: opts.workers }, () => ({
      // execArgv []: not the parent's Node options, whose `--import tsx` would register a second loader (bootstrap.mjs sets up its own)
      worker: new Worker(BOOTSTRAP, { workerData: { entry: ENTRY.href }, execArgv: [] }),
      pending: new Map(),
      busy: false,
      failed: null,
      taskMs: 0,
      taskSince: 0,
    }));
    const pool = new PolicyWorkers(threads);
    for (const t of threads) pool.listen(t);
    const init: ToWorker = {
      type: 'init',
      backend: opts.backend,
      config: opts.model.config,
      padId: opts.model.padId,
      stopIds: [...opts.model.stopIds],
      taskModules: (opts.taskModules ?? []).map((m) => (m instanceof URL ? m : pathToFileURL(m)).href),
    };
    try {
      const replies = (await Promise.all(threads.map((t) => pool.send(t, INIT_ID, init)))) as InitReply[];
      pool.threadIds = replies.map((r) => r.osThreadId);
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** Number of worker threads. */
  get size(): number {
    return this.threads.length;
  }

  /**
   * The workers' operating-system thread ids (Linux; null elsewhere), in worker order: to tell their CPU time
   * apart from the parent's and V8's background threads in /proc/self/task (see bench/threads.ts).
   */
  get osThreadIds(): readonly (number | null)[] {
    return this.threadIds;
  }

  /**
   * Copy `weights` (float32 tensors keyed by name) into every worker's slot `slot`, once the tasks already
   * given out have finished. Skipped when no tensor changed since the last sync of this slot (a tf.Variable
   * gets a new data id on every assign). Returns without waiting for the workers' replies: a worker handles its
   * messages in order, so every task given out after this call computes with these weights, and a worker whose
   * copy failed fails those tasks with that error (worker.ts). The replies are awaited before this slot's buffer
   * is written again.
   */
  async syncWeights(weights: ReadonlyMap<string, tf.Tensor>, slot = 'policy'): Promise<void> {
    await this.idle();
    await this.syncReplies.get(slot);
    const entries = [...weights];
    const dataIds = entries.map(([, t]) => t.dataId as object);
    const last = this.buffers.get(slot);
    if (last && last.synced.length === dataIds.length && last.synced.every((d, i) => d === dataIds[i])) return;
    const layout: TensorSlot[] = [];
    let offset = 0;
    for (const [name, t] of entries) {
      if (t.dtype !== 'float32') throw new Error(`syncWeights: ${name} is ${t.dtype}, expected float32`);
      layout.push({ name, shape: [...t.shape], offset, size: t.size });
      offset += t.size;
    }
    const buffer = last && last.buffer.byteLength === offset * 4 ? last.buffer : new SharedArrayBuffer(offset * 4);
    const all = new Float32Array(buffer);
    entries.forEach(([, t], i) => readInto(t, all, layout[i]!.offset));
    this.buffers.set(slot, { buffer, synced: dataIds });
    const replies = Promise.all(this.threads.map((t) => this.send(t, this.nextId++, { type: 'sync', id: 0, slot, buffer, layout })));
    // A failed copy marks the slot unsynced, so the next call sends the weights again.
    this.syncReplies.set(slot, replies.then(() => undefined, () => void this.buffers.set(slot, { buffer, synced: [] })));
  }

  /**
   * Run task `task` (a built-in or a task module's) on the next idle worker; resolves with its result.
   * `onProgress` gets what the task posts while it runs (TaskContext.post).
   */
  run<T>(task: string, payload: unknown, transfer: TransferListItem[] = [], onProgress?: (value: unknown) => void): Promise<T> {
    if (this.closed) return Promise.reject(new Error('PolicyWorkers: closed'));
    if (this.active++ === 0) this.busySince = performance.now();
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ message: { type: 'task', task, payload }, transfer, pending: { resolve: resolve as (v: unknown) => void, reject, progress: onProgress } });
      this.pump();
    }).finally(() => {
      if (--this.active === 0) {
        this.busyTotal += performance.now() - this.busySince;
        for (const w of this.idleWaiters.splice(0)) w();
      }
    });
  }

  /**
   * Milliseconds so far during which at least one task was queued or running. Over a stretch of work, its
   * wall time minus the growth of busyMs is what the calling thread did alone (the serial part).
   */
  get busyMs(): number {
    return this.busyTotal + (this.active > 0 ? performance.now() - this.busySince : 0);
  }

  /**
   * Per worker thread, in worker order: milliseconds so far during which it had a task (from hand-out to its
   * reply; weight syncs are not tasks). Over a stretch of work, its wall time minus a thread's growth is the time
   * that thread had nothing to do: waiting for the slowest thread at the end of a stage, or for the parent.
   */
  get taskMsByThread(): number[] {
    const now = performance.now();
    return this.threads.map((t) => t.taskMs + (t.busy ? now - t.taskSince : 0));
  }

  /**
   * Record every task from now on (when it was handed out, when it finished, on which thread), for
   * takeTaskLog; `recordTasks(false)` stops and drops what was recorded. Off by default.
   */
  recordTasks(on = true): void {
    this.taskLog = on ? (this.taskLog ?? []) : null;
  }

  /**
   * The tasks finished since recording started or since the last call, in the order they finished, and clears
   * the list (recording goes on). A timeline of the pool: bench/step.ts --timeline prints it per step. Empty
   * when not recording.
   */
  takeTaskLog(): TaskRecord[] {
    if (!this.taskLog) return [];
    const out = this.taskLog;
    this.taskLog = [];
    return out;
  }

  /**
   * What `generate(model, prompts, opts)` returns, computed by the workers: the prompts are cut into one
   * contiguous part per worker (between runs of equal prompts where possible, so each distinct prompt is still
   * prefilled once), each part with its rows' own seeds and the whole batch's padded length, so every row
   * computes and draws exactly what it would in one call. An Rng passed as `seed` is advanced as generate would.
   * When a worker falls idle while another part still decodes, that part hands half of its running rows over
   * to it (split-generate.ts; `handoff`: 'auto', default; 'off'; 'always', for tests).
   */
  async generate(model: GenerationModel, prompts: number[][], opts: GenerateOptions, handoff: HandoffMode = defaultHandoff()): Promise<GenerateResult> {
    const seeds = opts.rowSeeds ?? (opts.seed === undefined ? undefined : rowSeeds(opts.seed, prompts.length));
    if (prompts.length === 0) return { tokens: [], logprobs: [], finished: [] };
    const padTo = Math.max(opts.padTo ?? 0, ...prompts.map((p) => p.length));
    await this.syncWeights(model.weights);
    const { seed: _seed, ...rest } = opts;
    return splitGenerate(
      (task, payload, onProgress, transfer) => this.run<GenerateResult>(task, payload, transfer, onProgress),
      this.size,
      prompts,
      splitRuns(prompts, this.size),
      ([a, b]) => ({ ...rest, rowSeeds: seeds?.slice(a, b), padTo }),
      handoff,
    );
  }

  /** End the workers (tasks still queued or running are rejected). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const error = new Error('PolicyWorkers: closed');
    for (const q of this.queue.splice(0)) q.pending.reject(error);
    for (const t of this.threads) for (const p of t.pending.values()) p.reject(error);
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  /** Resolves when no task is queued or running. */
  private idle(): Promise<void> {
    return this.active === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private listen(t: Thread): void {
    t.worker.unref(); // an idle worker never keeps the process alive
    const fail = (error: Error) => {
      t.failed ??= error;
      for (const p of t.pending.values()) p.reject(error);
      t.pending.clear();
      t.worker.unref();
    };
    t.worker.on('message', (msg: FromWorker) => {
      const p = t.pending.get(msg.id);
      if (!p) return;
      if (msg.type === 'progress') {
        try {
          p.progress?.(msg.value);
        } catch (e) {
          log.warn(`PolicyWorkers: a progress handler failed: ${(e as Error).message}`);
        }
        return;
      }
      t.pending.delete(msg.id);
      if (t.pending.size === 0) t.worker.unref();
      if (msg.type === 'result') p.resolve(msg.value);
      else {
        const error = new Error(msg.message);
        if (msg.stack) error.stack = `Error: ${msg.message}\n    (in a PolicyWorkers thread)\n${msg.stack.split('\n').slice(1).join('\n')}`;
        p.reject(error);
      }
    });
    t.worker.on('error', (e) => fail(e instanceof Error ? e : new Error(String(e))));
    t.worker.on('exit', (code) => {
      if (!this.closed) fail(new Error(`PolicyWorkers: a worker thread exited (code ${code})`));
    });
  }

  /** Post a message (its id set to `id`) to one thread; resolves with the reply. */
  private send(t: Thread, id: number, msg: ToWorker, transfer: TransferListItem[] = [], progress?: (value: unknown) => void): Promise<unknown> {
    if (t.failed) return Promise.reject(t.failed);
    return new Promise<unknown>((resolve, reject) => {
      t.pending.set(id, { resolve, reject, progress });
      t.worker.ref(); // a worker with a reply pending keeps the process alive
      t.worker.postMessage(msg.type === 'init' ? msg : { ...msg, id }, transfer);
    });
  }

  /** Give queued tasks to idle threads. */
  private pump(): void {
    for (const [thread, t] of this.threads.entries()) {
      if (this.queue.length === 0) return;
      if (t.busy || t.failed) continue;
      const q = this.queue.shift()!;
      t.busy = true;
      t.taskSince = performance.now();
      const done = (failed: boolean) => {
        const end = performance.now();
        t.busy = false;
        t.taskMs += end - t.taskSince;
        this.taskLog?.push({ thread, task: q.message.task, start: t.taskSince, end, failed });
        this.pump();
      };
      this.send(t, this.nextId++, { ...q.message, id: 0 }, q.transfer, q.pending.progress).then(
        (v) => (done(false), q.pending.resolve(v)),
        (e: Error) => (done(true), q.pending.reject(e)),
      );
    }
    const failed = this.threads.find((t) => t.failed);
    if (this.queue.length > 0 && failed && this.threads.every((t) => t.failed)) {
      for (const q of this.queue.splice(0)) q.pending.reject(failed.failed!);
    }
  }
}

/** The handover mode from EMPO_HANDOFF ('auto' when unset). */
function defaultHandoff(): HandoffMode {
  const v = process.env.EMPO_HANDOFF ?? 'auto';
  if (v !== 'auto' && v !== 'off' && v !== 'always') throw new Error(`EMPO_HANDOFF must be auto, off or always, got '${v}'`);
  return v;
}

/**
 * Cut rows 0..n into at most `parts` contiguous [start, end) ranges of about equal size, preferring cuts where
 * the prompt changes (runs of equal prompts stay together unless a run is larger than a part).
 */
export function splitRuns(prompts: readonly number[][], parts: number): [number, number][] {
  const n = prompts.length;
  if (n === 0) return [];
  const cuts: number[] = [0]; // row indices where a run of equal prompts starts
  for (let i = 1; i < n; i++) if (!sameIds(prompts[i]!, prompts[i - 1]!)) cuts.push(i);
  const out: [number, number][] = [];
  let start = 0;
  for (let p = 1; p <= parts && start < n; p++) {
    const target = Math.round((n * p) / parts);
    if (p === parts || target >= n) {
      out.push([start, n]);
      break;
    }
    // the run start nearest to the target, else the target itself when runs are longer than a part
    let best = target;
    let dist = Infinity;
    for (const c of cuts) {
      if (c > start && Math.abs(c - target) < dist) {
        dist = Math.abs(c - target);
        best = c;
      }
    }
    if (dist > n / parts / 2) best = target;
    if (best <= start) continue;
    out.push([start, best]);
    start = best;
  }
  return out;
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
