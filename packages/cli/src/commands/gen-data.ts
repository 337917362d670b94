import { EmpoError } from '@empo/core';
import { parse, positiveInt } from '../args.ts';
import type { Command } from './types.ts';

export const genData: Command = {
  summary: 'generate the bundled arithmetic task (train, eval and pretraining files) from a seed',
  async run(argv) {
    const { values } = parse('gen-data', argv, {
      out: { type: 'string' }, seed: { type: 'string' }, train: { type: 'string' }, eval: { type: 'string' },
      sft: { type: 'string' }, 'error-rate': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    });
    const { defaultArithTaskOptions: d, heldOutCount, writeArithmeticTask } = await import('@empo/tasks');
    if (values.help) {
      process.stdout.write(`Usage: empo gen-data [--out DIR] [--seed N] [--train N] [--eval N] [--sft N] [--error-rate P]

Writes DIR/train.parquet (unlabeled) and DIR/eval.parquet (labeled, disjoint), both from the
held-out split that pretraining never sees (${heldOutCount()} problems), DIR/sft.parquet (noisy
step-by-step solutions of the other problems, for pretraining), DIR/train-labeled.parquet and
DIR/sft-gold.parquet (the training questions' answers and solutions, for the supervised
baselines of 'empo results' only) and DIR/task.json. Same options, same files.
Defaults: --out data/tasks/arith --seed ${d.seed} --eval ${d.evalCount} --train (every held-out
problem not in the evaluation set: ${heldOutCount() - d.evalCount}) --sft ${d.sftCount} --error-rate ${d.errorRate}
`);
      return;
    }
    const errorRate = values['error-rate'] === undefined ? d.errorRate : Number(values['error-rate']);
    if (!(errorRate >= 0 && errorRate < 1)) throw new EmpoError(`--error-rate must be in [0, 1), got '${values['error-rate']}'`);
    const out = values.out ?? 'data/tasks/arith';
    try {
      const counts = writeArithmeticTask(out, {
        ...d,
        seed: positiveInt('--seed', values.seed, d.seed),
        trainCount: values.train === undefined ? d.trainCount : positiveInt('--train', values.train, 1),
        evalCount: positiveInt('--eval', values.eval, d.evalCount),
        sftCount: positiveInt('--sft', values.sft, d.sftCount),
        errorRate,
      });
      process.stderr.write(`[empo] wrote ${out}: ${JSON.stringify(counts)}\n`);
    } catch (error) {
      if (error instanceof RangeError) throw new EmpoError(error.message);
      throw error;
    }
  },
};
