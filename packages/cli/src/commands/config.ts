import { describeConfig } from '@empo/core';
import { configFrom, configOptions, parse } from '../args.ts';
import type { Command } from './types.ts';

export const config: Command = {
  summary: 'list every config key with its type, default and meaning; --resolved prints the resolved config',
  async run(argv) {
    const { values } = parse('config', argv, { ...configOptions, resolved: { type: 'boolean' } });
    if (values.help) {
      process.stdout.write('Usage: empo config [--resolved] [config options]\n');
      return;
    }
    const resolved = configFrom(values);
    if (values.resolved) {
      process.stdout.write(JSON.stringify(resolved, null, 2) + '\n');
      return;
    }
    for (const row of describeConfig()) {
      process.stdout.write(`${row.key}  (${row.type}, default ${JSON.stringify(row.default)})\n    ${row.doc}\n`);
    }
  },
};
