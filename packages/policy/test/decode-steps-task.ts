/** A task module for workers.test.ts: how many DirectDecoder steps the worker thread has run. */
import { directDecodeSteps } from '../src/decode.ts';
import type { TaskModule } from '../src/workers/protocol.ts';

export const tasks: TaskModule['tasks'] = {
  'test.directDecodeSteps': () => directDecodeSteps(),
};
