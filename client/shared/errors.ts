// The few error classes pgrelay throws, shared by db/ and relay/: each has a stable string `code` and an exact-sentence message.

/** An error pgrelay reports to its user: `message` is one complete sentence, `code` is stable across versions. */
export class PgRelayError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PgRelayError';
    this.code = code;
  }
}

/** A configuration value that cannot be used; the message names the variable and what it accepts. */
export class ConfigError extends PgRelayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('bad_config', message, options);
    this.name = 'ConfigError';
  }
}

/** One line for a person, from any thrown value, without a stack trace. */
export function describeError(err: unknown): string {
  if (err instanceof PgRelayError) return err.message;
  if (err instanceof AggregateError && err.errors.length > 0) return describeError(err.errors[0]);
  if (err instanceof Error) {
    // Errors raised by pgrelay's SQL already say "pgrelay: "; Postgres hints help a DBA act.
    const message = (err.message || err.name).replace(/^pgrelay: /, '');
    const hint = (err as { hint?: string }).hint;
    return hint ? `${message}. ${hint}` : message;
  }
  return String(err);
}
