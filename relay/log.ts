// Structured JSON logs (pino); tokens, secrets and passwords are redacted wherever they appear.
import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths pino replaces with "[redacted]" before a line is written. */
const redact = [
  'token', '*.token', 'password', '*.password', 'secret', '*.secret', 'jwtSecret', '*.jwtSecret',
  'databaseUrl', '*.databaseUrl', 'authorization', '*.authorization', 'headers.authorization',
  'headers["sec-websocket-protocol"]',
];

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { service: 'pgrelay' },
    redact: { paths: redact, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
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
