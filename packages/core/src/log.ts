import cliProgress from 'cli-progress';

const quiet = () => process.env.EMPO_QUIET === '1';

/** Log lines go to stderr, so stdout stays clean for machine-readable output. */
export const log = {
  info(message: string): void {
    if (!quiet()) process.stderr.write(`[empo] ${message}\n`);
  },
  warn(message: string): void {
    process.stderr.write(`[empo] warning: ${message}\n`);
  },
};

export interface Progress {
  tick(amount?: number, status?: string): void;
  stop(): void;
}

/**
 * A progress bar on a terminal; elsewhere (CI, pipes) a line at start and end, so logs stay readable.
 */
export function progress(label: string, total: number): Progress {
  if (quiet()) return { tick() {}, stop() {} };
  if (!process.stderr.isTTY) {
    const start = Date.now();
    let done = 0;
    log.info(`${label}: 0/${total}`);
    return {
      tick(amount = 1) { done += amount; },
      stop() { log.info(`${label}: ${done}/${total} in ${((Date.now() - start) / 1000).toFixed(1)}s`); },
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: `[empo] ${label} [{bar}] {value}/{total} {percentage}% | {eta_formatted} left | {status}`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { status: '' });
  return {
    tick(amount = 1, status = '') { bar.increment(amount, { status }); },
    stop() { bar.stop(); },
  };
}
