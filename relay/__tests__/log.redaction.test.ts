// Logs are JSON lines and never carry a token, a secret or a password.
import { describe, expect, it } from 'vitest';
import { createLogger, safeUrl } from '../ops/log.js';

describe('logs', () => {
  it('redact tokens, secrets, passwords and connection URLs wherever they appear', () => {
    const lines: string[] = [];
    const log = createLogger('info', { write: (l) => void lines.push(l) });
    log.info({ token: 'eyJ.secret.token', password: 'hunter2', config: { jwtSecret: 'shh', databaseUrl: 'postgres://u:p@h/d' }, headers: { authorization: 'Bearer x' }, tenant: 'acme' }, 'hello');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ level: 'info', service: 'pgrelay', msg: 'hello', tenant: 'acme', token: '[redacted]', password: '[redacted]', config: { jwtSecret: '[redacted]', databaseUrl: '[redacted]' }, headers: { authorization: '[redacted]' } });
    expect(lines[0]).not.toMatch(/hunter2|shh|secret\.token|u:p@|Bearer x/);
  });

  it('show connection URLs without their password', () => {
    expect(safeUrl('postgres://app:s3cret@db.example:5432/app')).toBe('postgres://app:***@db.example:5432/app');
  });
});
