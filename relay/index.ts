// pgrelay's server-side public API: start a relay in-process, migrate a database, read the config.
export { startRelay, type Relay, type RelayOptions } from './relay.js';
export { loadConfig, describeConfig } from './ops/config.js';
export type { RelayConfig } from './ops/relay-config.js';
export { migrate, type MigrateOptions } from '../db/migrate.js';
export { PgRelayError, ConfigError } from '../client/shared/errors.js';
