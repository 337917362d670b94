/**
 * Messages between a PolicyWorkers pool (main thread) and its worker threads, and the interface task
 * handlers see. Everything here is structured-cloneable; weights travel through a SharedArrayBuffer.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../config.ts';
import type { GenerationModel } from '../generate.ts';

/** Where one tensor lies in a weights buffer (offset and size in float32 elements). */
export interface TensorSlot {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export interface InitMessage {
  type: 'init';
  /** tfjs backend to select (the parent's: wasm, cpu, webgpu, tensorflow). */
  backend: string;
  config: ModelConfig;
  padId: number;
  stopIds: number[];
  /** URLs of modules whose `tasks` export adds task handlers (see TaskModule). */
  taskModules: string[];
}

/** A worker's reply to its init message. */
export interface InitReply {
  /** The worker's operating-system thread id (Linux, from /proc/thread-self), for per-thread CPU accounting; else null. */
  osThreadId: number | null;
}

/** Copy the tensors of `buffer` into the weights named `slot` ('policy', 'reference', ...). */
export interface SyncMessage {
  type: 'sync';
  id: number;
  slot: string;
  buffer: SharedArrayBuffer;
  layout: TensorSlot[];
}

export interface TaskMessage {
  type: 'task';
  id: number;
  task: string;
  payload: unknown;
}

export type ToWorker = InitMessage | SyncMessage | TaskMessage;

export type FromWorker =
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; message: string; stack?: string }
  /** Sent by a running task (TaskContext.post), before its result: `PolicyWorkers.run`'s onProgress gets `value`. */
  | { type: 'progress'; id: number; value: unknown };

/** What a task handler gets: the worker's replica of the model (a GenerationModel) and its weight slots. */
export interface WorkerModel extends GenerationModel {
  /** The weights last synced into `slot` (an error if that slot was never synced). */
  weightsOf(slot: string): ReadonlyMap<string, tf.Variable>;
}

/** What a task handler can do besides returning its result. */
export interface TaskContext {
  /** Send `value` to the task's caller now, while the task runs (the buffers in `transfer` are moved). */
  post(value: unknown, transfer?: ArrayBuffer[]): void;
}

export type TaskHandler = (model: WorkerModel, payload: never, context: TaskContext) => unknown;

/** A module loaded by every worker: its handlers are run by `PolicyWorkers.run(name, payload)`. */
export interface TaskModule {
  tasks: Record<string, TaskHandler>;
}

/** The id of the init message's reply. */
export const INIT_ID = 0;
