// Configuration: defaults, flags over environment, and one sentence naming the variable for every bad value.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../client/shared/errors.js';
import { loadConfig } from '../ops/config.js';

describe('loadConfig', () => {
  it('has documented defaults and is frozen', () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://relay@db.internal/app' });
    expect(c).toMatchObject({
      port: 8080, host: '0.0.0.0', tenantClaim: 'tenant_id', historyTx: 20000, historyBytes: 64 * 1024 * 1024, retention: '7 days',
      maxBackpressure: 4 * 1024 * 1024, maxSubscriptions: 100, maxFrame: 256 * 1024, maxMessage: 16 * 1024, rateLimit: 50, idleTimeout: 60, server: 'auto', compression: 'off', logLevel: 'info', logFormat: 'auto',
      jwtSecret: undefined, allowedOrigins: undefined,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('issue 18: without DATABASE_URL (embedded development mode) HOST defaults to 127.0.0.1; a HOST given wins', () => {
    expect(loadConfig({})).toMatchObject({ databaseUrl: undefined, host: '127.0.0.1' });
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(loadConfig({}, ['--host', '::']).host).toBe('::');
    // an empty variable means unset, as for every other variable
    expect(loadConfig({ HOST: '' }).host).toBe('127.0.0.1');
    expect(loadConfig({ DATABASE_URL: 'postgres://relay@db.internal/app', HOST: '10.0.0.5' }).host).toBe('10.0.0.5');
  });

  it('reads flags over the environment', () => {
    const c = loadConfig({ PORT: '9000', RELAY_HISTORY_BYTES: '8mb' }, ['--port', '9100', '--history-tx=5', '--allowed-origins', 'https://a.example, http://localhost:5173']);
    expect(loadConfig({ RELAY_COMPRESSION: 'on' }, ['--compression', 'off']).compression).toBe('off');
    expect(loadConfig({ RELAY_COMPRESSION: 'on' }).compression).toBe('on');
    expect(c).toMatchObject({ port: 9100, historyTx: 5, historyBytes: 8 * 1024 * 1024, allowedOrigins: ['https://a.example', 'http://localhost:5173'] });
  });

  it.each([
    [{ PORT: '70000' }, [], 'PORT must be a TCP port number from 0 to 65535; got "70000".'],
    [{}, ['--port', 'x'], '--port (PORT) must be a TCP port number from 0 to 65535; got "x".'],
    [{ DATABASE_URL: 'mysql://x' }, [], 'DATABASE_URL must be a postgres:// connection URL; got (value hidden).'],
    [{ RELAY_JWT_SECRET: 'short' }, [], 'RELAY_JWT_SECRET must be at least 32 characters long (HS256 needs 256 bits of secret); got (value hidden).'],
    [{ RELAY_JWKS_URL: 'ftp://keys' }, [], 'RELAY_JWKS_URL must be an http(s) URL of a JSON Web Key Set; got "ftp://keys".'],
    [{ RELAY_TENANT_CLAIM: 'a b' }, [], 'RELAY_TENANT_CLAIM must be a claim name (letters, digits, _ . : -); got "a b".'],
    [{ RELAY_ALLOWED_ORIGINS: 'example.com' }, [], 'RELAY_ALLOWED_ORIGINS must be a comma-separated list of origins such as https://app.example.com; got "example.com".'],
    [{ RELAY_HISTORY_TX: '-1' }, [], 'RELAY_HISTORY_TX must be an integer from 0 to 10000000; got "-1".'],
    [{ RELAY_HISTORY_BYTES: 'lots' }, [], 'RELAY_HISTORY_BYTES must be a size from 0 to 16gb, such as 64mb; got "lots".'],
    [{ RELAY_RETENTION: 'forever' }, [], 'RELAY_RETENTION must be a Postgres interval such as "7 days" or "12 hours"; got "forever".'],
    [{ RELAY_MAX_BACKPRESSURE: '1kb' }, [], 'RELAY_MAX_BACKPRESSURE must be a size from 64kb to 1gb, such as 4mb; got "1kb".'],
    [{ RELAY_MAX_SUBSCRIPTIONS: '0' }, [], 'RELAY_MAX_SUBSCRIPTIONS must be an integer from 1 to 10000; got "0".'],
    [{ RELAY_MAX_FRAME: '1' }, [], 'RELAY_MAX_FRAME must be a size from 16kb to 64mb, such as 256kb; got "1".'],
    [{ RELAY_IDLE_TIMEOUT: '10' }, [], 'RELAY_IDLE_TIMEOUT must be seconds from 8 to 960 (a multiple of 4); got "10".'],
    [{ RELAY_SERVER: 'uWS' }, [], 'RELAY_SERVER must be one of auto, uws, ws; got "uWS".'],
    [{ RELAY_COMPRESSION: 'gzip' }, [], 'RELAY_COMPRESSION must be one of off, on; got "gzip".'],
    [{}, ['--compression', 'true'], '--compression (RELAY_COMPRESSION) must be one of off, on; got "true".'],
    [{ LOG_LEVEL: 'loud' }, [], 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent; got "loud".'],
    [{ RELAY_JWT_SECRET: 'x'.repeat(32), RELAY_JWKS_URL: 'https://k.example/jwks' }, [], 'RELAY_JWT_SECRET and RELAY_JWKS_URL are both set; set only one of them.'],
    // issue 18: the secret docker-compose.yml used to fall back to
    [{ RELAY_JWT_SECRET: 'dev-only-secret-change-me-0123456789abcdef' }, [], "RELAY_JWT_SECRET is an example printed in pgrelay's own files (docker-compose.yml of 0.2.0 and earlier), so anyone could sign tokens the relay accepts; make a secret of your own with: openssl rand -hex 32."],
    [{}, ['--jwt-secret', 'dev-only-secret-change-me-0123456789abcdef'], "--jwt-secret (RELAY_JWT_SECRET) is an example printed in pgrelay's own files (docker-compose.yml of 0.2.0 and earlier), so anyone could sign tokens the relay accepts; make a secret of your own with: openssl rand -hex 32."],
    // issue 26: a command a user of this checkout can paste (pgrelay is on no PATH here)
    [{}, ['--colour', 'red'], 'Unknown option --colour; run npm run pgrelay -- start --help for the list.'],
    [{ RELAY_REUSEPORT: 'yes' }, [], 'RELAY_REUSEPORT must be one of off, on (or 0, 1); got "yes".'],
    [{}, ['--port'], 'Option --port needs a value.'],
  ] as const)('%j %j', (env, argv, message) => {
    expect(() => loadConfig(env, argv)).toThrow(new ConfigError(message));
  });

  it('issue 26: names every problem at once, one a line, so that fixing one does not only reveal the next', () => {
    expect(() => loadConfig({ PORT: 'eighty', RELAY_JWT_SECRET: 'short', LOG_LEVEL: 'loud' }, ['--colour', 'red'])).toThrow(new ConfigError([
      '4 settings need fixing:',
      '  - PORT must be a TCP port number from 0 to 65535; got "eighty".',
      '  - RELAY_JWT_SECRET must be at least 32 characters long (HS256 needs 256 bits of secret); got (value hidden).',
      '  - LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent; got "loud".',
      '  - Unknown option --colour; run npm run pgrelay -- start --help for the list.',
    ].join('\n')));
  });

  it('issue 26: RELAY_REUSEPORT is off unless asked for (on or 1)', () => {
    expect(loadConfig({}).reusePort).toBe(false);
    expect(loadConfig({ RELAY_REUSEPORT: 'on' }).reusePort).toBe(true);
    expect(loadConfig({ RELAY_REUSEPORT: '1' }).reusePort).toBe(true);
    expect(loadConfig({ RELAY_REUSEPORT: '1' }, ['--reuseport', 'off']).reusePort).toBe(false);
    expect(loadConfig({ RELAY_REUSEPORT: '0' }).reusePort).toBe(false);
  });
});
