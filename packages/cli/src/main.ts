import { dawnLoaded, isEmpoError, releaseBackend } from '@empo/core';
import { commands } from './commands/index.ts';

const usage = `empo: Entropy Minimized Policy Optimization, unsupervised RL fine-tuning for language models

Usage: empo <command> [options]

Commands:
${Object.entries(commands).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`).join('\n')}

Run 'empo <command> --help' for a command's options.`;

/** Entry point: returns the process exit code (0 ok, 1 failure, 2 bad input). */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage + '\n');
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`empo: unknown command '${name}'\n\n${usage}\n`);
    return 2;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (error) {
    if (isEmpoError(error)) {
      process.stderr.write(`empo ${name}: error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

/**
 * After a command: release the tensor backend's resources that could keep Node's event loop alive (Dawn's
 * GPU instances). Returns whether Dawn was loaded (the caller then makes sure the process exits).
 */
export async function shutdown(): Promise<boolean> {
  const used = dawnLoaded();
  await releaseBackend();
  return used;
}
