// Structured JSON logs (pino); tokens, secrets and passwords are redacted wherever they appear.
import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths pino replaces with "[redacted]" before a line is written. */
const redact = [
  'token', '*.token', 'password', '*.password', 'secret', '*.secret', 'jwtSecret', '*.jwtSecret',
  'databaseUrl', '*.databaseUrl', 'authorization', '*.authorization', 'headers.authorization',
  'headers["sec-websocket-protocol"]',
];

/** A logger writing JSON lines to stdout (or to `destination`, for tests). */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', destination?: { write(line: string): void }): Logger {
  const options = {
    level,
    base: { service: 'pgrelay' },
    redact: { paths: redact, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** Shows a connection URL without its password, for logs. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}
