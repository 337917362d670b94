/**
 * An error the user can cause and fix (bad file, bad flag, bad config key).
 * The CLI prints its message without a stack trace and exits with code 2.
 */
export class EmpoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmpoError';
  }
}

/** User errors, also those of subclasses (ConfigError, SafetensorsError, ... keep their own name). */
export function isEmpoError(error: unknown): error is EmpoError {
  return error instanceof EmpoError;
}
