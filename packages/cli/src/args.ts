import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EmpoError, loadConfig, parseBackendName, type EmpoConfig } from '@empo/core';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Flags every pipeline command takes: they select and override the run config. */
export const configOptions = {
  config: { type: 'string' },
  set: { type: 'string', multiple: true },
  run: { type: 'string' },
  seed: { type: 'string' },
  backend: { type: 'string' },
  workers: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} satisfies Options;

export const configHelp = `Config:
  --config FILE      run config (JSON or YAML); default: ./empo.config.{json,yaml,yml} if present
  --set KEY=VALUE    override one config key, e.g. --set trainer.learning_rate=1e-4 (repeatable)
  --run NAME         run name (config key 'run'); the run folder is <runs_dir>/<run>
  --seed N           seed (config key 'seed')
  --backend NAME     tensor backend: wasm (default), cpu, webgpu, tensorflow, auto (config key
                     'backend'; 'empo backends' lists what this machine has)
  --workers N        worker threads for sampling and updates (config key 'workers'; 1 = none;
                     results are the same for any N)
  -h, --help         this help
See 'empo config' for every config key.`;

export interface Parsed<T extends Options> {
  values: { [K in keyof T]?: T[K] extends { type: 'boolean' } ? boolean : T[K] extends { multiple: true } ? string[] : string };
  positionals: string[];
}

/** Parse argv strictly: an unknown flag is an error that names it. */
export function parse<T extends Options>(command: string, argv: string[], options: T, allowPositionals = false): Parsed<T> {
  try {
    const result = parseArgs({ args: argv, options, allowPositionals, strict: true });
    return result as unknown as Parsed<T>;
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new EmpoError(`${message}; see 'empo ${command} --help'`);
  }
}

/** The resolved config from --config, --set and the shortcut flags. */
export function configFrom(values: { config?: string; set?: string[]; run?: string; seed?: string; backend?: string; workers?: string }): EmpoConfig {
  const overrides = [...(values.set ?? [])];
  if (values.run !== undefined) overrides.push(`run=${JSON.stringify(values.run)}`);
  if (values.seed !== undefined) overrides.push(`seed=${values.seed}`);
  if (values.backend !== undefined) overrides.push(`backend=${JSON.stringify(parseBackendName('--backend', values.backend))}`);
  if (values.workers !== undefined) {
    const n = Number(values.workers);
    if (!Number.isInteger(n) || n < 1) throw new EmpoError(`--workers must be a positive integer, got '${values.workers}'`);
    overrides.push(`workers=${n}`);
  }
  return loadConfig({ file: values.config, overrides });
}

export function positiveInt(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new EmpoError(`${flag} must be a non-negative integer, got '${text}'`);
  return n;
}
