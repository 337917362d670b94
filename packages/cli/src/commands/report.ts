import { RunLayout } from '@empo/core';
import { configFrom, configHelp, configOptions, parse } from '../args.ts';
import type { Command } from './types.ts';

export const report: Command = {
  summary: 'write a self-contained HTML report (plots, tables, sample answers) of a run',
  async run(argv) {
    const { values } = parse('report', argv, configOptions);
    if (values.help) {
      return void process.stdout.write(`Usage: empo report [--run NAME]\n\nWrites <run>/report/index.html and SVG plots of reward, semantic entropy,\nheld-out accuracy and answer diversity per step.\n\n${configHelp}\n`);
    }
    const { writeReport } = await import('@empo/evaluator');
    process.stdout.write(writeReport(RunLayout.fromConfig(configFrom(values))) + '\n');
  },
};
