import { dawnLoaded, isEmpoError } from '@empo/core';
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
 * After a command that loaded Dawn (`--backend webgpu`, or adapter probes): end the process here, once stdout
 * and stderr are flushed, with Dawn's objects still alive. Releasing them and letting Node exit by itself
 * crashed the process after its output in about one run in eight with the other core busy (SIGSEGV, or SIGABRT
 * from a std::system_error, as Dawn's objects were finalized while Mesa's threads still ran), and Dawn keeps
 * the event loop alive while they are referenced. Without Dawn this returns and the process exits as usual.
 */
export async function exitIfDawnLoaded(code: number): Promise<void> {
  if (!dawnLoaded()) return;
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write('', () => resolve()))));
  process.exit(code);
}
