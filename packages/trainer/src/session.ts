import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  EmpoError, RunLayout, encodeParquet, log, metricsSpec, writeFileAtomicAsync,
  type ClusterRow, type EmpoConfig, type MetricsRow, type RolloutRow,
} from '@empo/core';
import { Policy, formatMemory, type PolicyWorkers } from '@empo/policy';
import { AdamW } from './adamw.ts';
import { loadOptimizerState, saveCheckpoint } from './checkpoint.ts';
import { collapseWarning, stepMetrics } from './metrics.ts';
import { learningRateAt } from './schedule.ts';
import { buildExamples, policyUpdate, policyUpdateParallel, type Example, type UpdateOptions, type UpdateStats } from './update.ts';

/**
 * The trainer's state between steps: the policy being trained, its AdamW moments, and the
 * frozen reference model (loaded only when beta > 0). The stage command opens one for a
 * single step; `empo train` keeps one open across steps and saves every save_steps.
 */
export class TrainerSession {
  /** The metrics of the last steps trained (the collapse warning's and guard's; see `knownMetrics`). */
  private readonly recentMetrics = new Map<number, MetricsRow>();
  /**
   * Files waiting to be encoded and written (see `trainParallel` and `writeWithStep`), in the order they came:
   * a metrics file, and the rollouts and clusters files `empo train` hands over; `step` for metrics files.
   */
  private unencoded: { path: string; encode: () => Uint8Array; step?: number }[] = [];
  /** The files still being written, in the order they came (see `flush`). */
  private pendingWrites: Promise<void> = Promise.resolve();
  /** The first failed write, thrown by the next `flush`, `train` or `save`. */
  private writeError: Error | null = null;

  private constructor(
    readonly config: EmpoConfig,
    readonly layout: RunLayout,
    readonly policy: Policy,
    readonly optimizer: AdamW,
    readonly reference: Policy | null,
    /** Steps completed: the weights in memory are those after this step. */
    public step: number,
  ) {}

  /** Load the model after `fromStep` (0 = base) with its optimizer state, and the reference model if beta > 0. */
  static async open(config: EmpoConfig, layout: RunLayout, fromStep: number): Promise<TrainerSession> {
    const dir = layout.modelDir(fromStep);
    const policy = await Policy.load(dir);
    const t = config.trainer;
    const optimizer = new AdamW(policy.namedVariables(), {
      learningRate: t.learning_rate, beta1: t.adam_beta1, beta2: t.adam_beta2, epsilon: t.adam_epsilon, weightDecay: t.weight_decay,
    });
    let reference: Policy | null = null;
    try {
      if (fromStep > 0 && !(await loadOptimizerState(dir, optimizer))) {
        throw new EmpoError(`${dir}: checkpoint has no trainer_state.json`);
      }
      if (t.beta > 0) reference = await Policy.load(t.ref_model ? resolve(t.ref_model) : layout.baseModel);
    } catch (error) {
      optimizer.dispose();
      policy.dispose();
      throw error;
    }
    return new TrainerSession(config, layout, policy, optimizer, reference, fromStep);
  }

  /**
   * One update from the rollouts and clusters of step `this.step + 1`; encodes that step's metrics.parquet and
   * writes it in the background (see `flush`).
   */
  train(rollouts: readonly RolloutRow[], clusters: readonly ClusterRow[]): MetricsRow {
    this.throwWriteError();
    this.encodePending();
    const { examples, lr, options } = this.begin(rollouts, clusters);
    const metrics = this.finish(rollouts, clusters, policyUpdate(this.policy, this.optimizer, examples, this.config.trainer, options), lr);
    this.encodePending();
    return metrics;
  }

  /**
   * `train` with the micro-batch gradients computed by worker threads (see policyUpdateParallel): the same
   * metrics, weights and optimizer state as `train`. Without workers (or with one), the same as `train`.
   *
   * With workers, a step's metrics file is encoded during the next step's update, once a worker has no gradient
   * task left (policyUpdateParallel's onWorkerFree): that core would wait for the last task anyway. Encoded
   * any earlier, it took a core from a worker (1-11 ms of this thread's CPU, most often during the next
   * sampling's prefill; BENCHMARKS.md, seventeenth round). An update without gradient tasks (no group kept)
   * leaves them for the next one; `flush` encodes what is still waiting.
   */
  async trainParallel(rollouts: readonly RolloutRow[], clusters: readonly ClusterRow[], workers: PolicyWorkers | null): Promise<MetricsRow> {
    if (!workers || workers.size < 2) return this.train(rollouts, clusters);
    this.throwWriteError();
    const { examples, lr, options } = this.begin(rollouts, clusters);
    const onWorkerFree = () => this.encodePending();
    const stats = await policyUpdateParallel(this.policy, this.optimizer, examples, this.config.trainer, { ...options, workers, onWorkerFree });
    return this.finish(rollouts, clusters, stats, lr);
  }

  /**
   * A file of the step about to be trained (`empo train` hands over its rollouts.parquet and clusters.parquet,
   * see FileWriter): encoded during the update, while a worker's core is free (at the update's start without
   * workers), then written in the background with the metrics files, atomically. `flush` and `save` wait for it,
   * so a checkpoint never exists without its step's files.
   */
  writeWithStep(path: string, encode: () => Uint8Array): void {
    this.throwWriteError();
    this.unencoded.push({ path, encode });
  }

  /** Steps trained whose metrics file is not encoded yet (with workers, the last step until the next update or `flush`). */
  get pendingMetricsSteps(): number[] {
    return this.unencoded.flatMap((u) => (u.step === undefined ? [] : [u.step]));
  }

  /**
   * The metrics of recent steps trained by this session, whose files may not be on disk yet: give them to
   * checkCollapse, so that the guard needs no `flush` first.
   */
  get knownMetrics(): ReadonlyMap<number, MetricsRow> {
    return this.recentMetrics;
  }

  private begin(rollouts: readonly RolloutRow[], clusters: readonly ClusterRow[]): { examples: Example[]; lr: number; options: UpdateOptions } {
    const step = this.step + 1;
    const t = this.config.trainer;
    const lr = learningRateAt(step, t.max_steps, { base: t.learning_rate, warmupSteps: t.warmup_steps, kind: t.lr_scheduler });
    this.optimizer.options.learningRate = lr;
    const examples = buildExamples(rollouts, clusters, t);
    log.info(`trainer: step ${step}, ${examples.length} of ${rollouts.length} sequences in kept groups, lr ${lr.toExponential(2)}`);
    return { examples, lr, options: { reference: this.reference ?? undefined, maxCompletionLength: this.config.sampler.max_new_tokens } };
  }

  private finish(rollouts: readonly RolloutRow[], clusters: readonly ClusterRow[], stats: UpdateStats, lr: number): MetricsRow {
    const step = this.step + 1;
    const metrics = stepMetrics(step, rollouts, clusters, stats, lr);
    if (!Number.isFinite(metrics.loss) || !Number.isFinite(metrics.grad_norm)) {
      const kept = this.layout.latestCheckpointStep();
      throw new EmpoError(
        `trainer: step ${step} produced a non-finite loss or gradient (loss ${metrics.loss}, grad norm ${metrics.grad_norm}); ` +
          `no update was applied and the last good checkpoint (step ${kept}) is kept. Lower trainer.learning_rate or check the rollouts.`,
      );
    }
    const warning = collapseWarning(this.recentMetrics.get(step - 1) ?? null, metrics);
    if (warning) log.warn(warning);
    // the guard reads the first and the last collapse_window steps: keep those
    const w = this.config.trainer.collapse_window;
    this.recentMetrics.set(step, metrics);
    if (step - w > w) this.recentMetrics.delete(step - w);
    this.step = step;
    this.unencoded.push({ path: this.layout.metricsPath(step), encode: () => encodeParquet(metricsSpec, [metrics]), step });
    log.info(
      `trainer: step ${step} loss ${metrics.loss.toFixed(4)} reward ${metrics.reward.toFixed(3)} entropy ${metrics.semantic_entropy.toFixed(3)} ` +
        `kept ${(metrics.kept_fraction * 100).toFixed(0)}% grad_norm ${metrics.grad_norm.toFixed(3)} clip ${metrics.clip_ratio.toFixed(3)} ` +
        `${Math.round(metrics.tokens_per_second)} tokens/s; memory ${formatMemory()}`,
    );
    return metrics;
  }

  /**
   * Encode a file here and now, and write it on libuv's thread pool: the step's time does not hold the disk flush
   * (5-13 ms a file, BENCHMARKS.md fourteenth round). Writes run one at a time, in the order they came, each atomic
   * (temporary name, then rename).
   */
  private write(path: string, encode: () => Uint8Array): void {
    const fail = (error: unknown) => {
      this.writeError ??= new EmpoError(`trainer: could not write ${path}: ${error instanceof Error ? error.message : String(error)}`);
    };
    if (this.writeError) return;
    let bytes: Uint8Array;
    try {
      bytes = encode();
    } catch (error) {
      fail(error);
      return;
    }
    this.pendingWrites = this.pendingWrites.then(() => (this.writeError ? undefined : writeFileAtomicAsync(path, bytes))).catch(fail);
  }

  /** Encode and start writing the files that wait for it (see trainParallel). */
  private encodePending(): void {
    for (const { path, encode } of this.unencoded.splice(0)) this.write(path, encode);
  }

  private throwWriteError(): void {
    if (this.writeError) throw this.writeError;
  }

  /**
   * Wait until every file handed over so far (metrics files, `writeWithStep`) is on disk; throws if one could not
   * be written.
   * `save` calls it; call it before reading metrics files back (a report) and before exiting. The collapse
   * guard needs no flush when given `knownMetrics`.
   */
  async flush(): Promise<void> {
    this.encodePending();
    await this.pendingWrites;
    this.throwWriteError();
  }

  /** Write the checkpoint of the current step atomically, then apply save_total_limit (after `flush`). */
  async save(): Promise<string> {
    await this.flush();
    const dir = this.layout.checkpointDir(this.step);
    await saveCheckpoint(dir, this.policy, this.optimizer, {
      step: this.step,
      optimizer_step: this.optimizer.step,
      seed: this.config.seed,
      base_model: this.config.model,
      data_cursor: this.step * this.config.sampler.questions_per_step,
      rng: 'streams derived from (seed, step): nothing to restore',
    });
    const limit = this.config.trainer.save_total_limit;
    if (limit !== null) {
      const steps = this.layout.checkpointSteps();
      for (const old of steps.slice(0, Math.max(0, steps.length - limit))) rmSync(this.layout.checkpointDir(old), { recursive: true, force: true });
    }
    return dir;
  }

  dispose(): void {
    this.optimizer.dispose();
    this.policy.dispose();
    this.reference?.dispose();
  }
}
