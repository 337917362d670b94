import type { EmpoConfig } from '@empo/core';
import { defaultWorkerCount, startWorkers, type Policy, type PolicyWorkers } from '@empo/policy';
import { trainerTaskModule } from '@empo/trainer';

/**
 * Worker threads for `empo train` and the main job, which sample and train with `policy` (null: everything
 * runs in this thread). Count: config `workers`, else (null) one per core on the CPU backends.
 */
export function loopWorkers(config: EmpoConfig, backend: string, policy: Policy): Promise<PolicyWorkers | null> {
  return startWorkers(config.workers ?? defaultWorkerCount(backend), { backend, model: policy, taskModules: [trainerTaskModule] });
}
