import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { EmpoError, readJsonFile, writeFolderAtomic, writeJsonAtomic } from '@empo/core';
import { readSafetensors, writeSafetensors, type HostTensor, type Policy } from '@empo/policy';
import type { AdamW } from './adamw.ts';

/** What a checkpoint records besides the model: enough to continue the run exactly. */
export interface TrainerState {
  /** Training steps completed; the checkpoint folder is named after it. */
  step: number;
  /** AdamW updates applied so far (steps whose entropy filter kept nothing apply none). */
  optimizer_step: number;
  seed: number;
  /** Base model the run started from. */
  base_model: string;
  /** Questions consumed so far (the data order is derived from seed and step). */
  data_cursor: number;
  /** How the random streams are restored (they are derived from seed and step). */
  rng: string;
}

export const optimizerFile = 'optimizer.safetensors';
export const trainerStateFile = 'trainer_state.json';

/**
 * Write a complete checkpoint atomically: the Hugging Face model files, the optimizer moments
 * and trainer_state.json go into a temporary folder that is renamed into place at the end.
 */
export async function saveCheckpoint(dir: string, policy: Policy, optimizer: AdamW, state: TrainerState): Promise<void> {
  await writeFolderAtomic(dir, async (tmp) => {
    await policy.writeFiles(tmp);
    const tensors = new Map<string, HostTensor>();
    for (const [name, t] of optimizer.stateTensors()) tensors.set(name, { shape: [...t.shape], data: t.dataSync() as Float32Array });
    await writeSafetensors(join(tmp, optimizerFile), tensors);
    writeJsonAtomic(join(tmp, trainerStateFile), state);
  });
}

/** Restore the optimizer moments of a checkpoint; a base model (no optimizer file) leaves them at zero. */
export async function loadOptimizerState(dir: string, optimizer: AdamW): Promise<TrainerState | null> {
  const statePath = join(dir, trainerStateFile);
  if (!existsSync(statePath)) return null;
  const state = readJsonFile(statePath) as TrainerState;
  if (typeof state.optimizer_step !== 'number' || typeof state.step !== 'number') {
    throw new EmpoError(`${statePath}: trainer state must have numeric 'step' and 'optimizer_step'`);
  }
  const path = join(dir, optimizerFile);
  const stored = await readSafetensors(path);
  const tensors = new Map<string, tf.Tensor>();
  for (const [name, t] of stored.tensors) tensors.set(name, tf.tensor(t.data, t.shape, 'float32'));
  try {
    optimizer.loadState(state.optimizer_step, tensors, path);
  } finally {
    tf.dispose([...tensors.values()]);
  }
  return state;
}
