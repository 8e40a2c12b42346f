// Structured logs (pino): JSON lines, or readable lines in a terminal (pino-pretty); tokens, secrets and passwords are redacted wherever they appear.
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/** Paths pino replaces with "[redacted]" before a line is written. */
const redact = [
  'token', '*.token', 'password', '*.password', 'secret', '*.secret', 'jwtSecret', '*.jwtSecret',
  'databaseUrl', '*.databaseUrl', 'authorization', '*.authorization', 'headers.authorization',
  'headers["sec-websocket-protocol"]',
];

/** `pretty`: one readable line per entry; `json`: JSON lines; `auto`: pretty when stdout is a terminal, else JSON. */
export type LogFormat = 'auto' | 'pretty' | 'json';

/** Whether `format` means readable lines on this stdout. */
export function prettyLogs(format: LogFormat = 'auto', isTty: boolean = process.stdout.isTTY === true): boolean {
  return format === 'pretty' || (format === 'auto' && isTty);
}

/**
 * A logger writing to stdout (or to `destination`, for tests): JSON lines, or with `format` `pretty` (or `auto` in a
 * terminal) readable lines. Redaction happens before either.
 */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', destination?: { write(line: string): void }, format: LogFormat = 'auto'): Logger {
  const options = {
    level,
    base: { service: 'pgrelay' },
    redact: { paths: redact, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (destination) return pino(options, destination);
  if (prettyLogs(format)) {
    // synchronous, like pino's own stdout: the last lines before an exit are not lost
    const stream = pretty({ sync: true, colorize: process.stdout.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', singleLine: true });
    return pino(options, stream);
  }
  return pino(options);
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
