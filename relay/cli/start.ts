// `pgrelay start`: configuration, database (given or embedded), migrations, then the relay until a signal.
import { checkDatabase } from '../../db/check-database.js';
import { ClusterSupervisor } from '../../db/cluster/cluster-supervisor.js';
import { startDevDatabase, type DevDatabase } from '../../db/cluster/dev-database.js';
import { migrateIfBehind } from '../../db/migrate.js';
import { configProblems, loadConfig } from '../ops/config.js';
import { ConfigError, describeError, PgRelayError } from '../../client/shared/errors.js';
import { createLogger, safeUrl } from '../ops/log.js';
import { startRelay, type Relay } from '../relay.js';
import { chooseServer } from '../server/choose-server.js';
import { startedByPackageScript, watchParent } from '../ops/parent-watch.js';
import { watchCommand } from '../ops/watch-hint.js';

export async function start(argv: readonly string[]): Promise<void> {
  const config = loadConfig(process.env, argv);
  const log = createLogger(config.logLevel, undefined, config.logFormat);
  // before any Postgres starts: RELAY_SERVER=uws where no native build loads stops here, with nothing to clean up
  const server = chooseServer(config.server);
  let dev: DevDatabase | undefined;
  let supervisor: ClusterSupervisor | undefined;
  let relay: Relay | undefined;
  let stopping = false;

  /** Stops the relay, then the embedded cluster if this process owns it and is the last pgrelay on it. */
  const release = async () => {
    supervisor?.stop();
    await relay?.close().catch((err: unknown) => log.error({ err }, 'relay did not close cleanly'));
    if (dev) {
      const outcome = await dev.stop().catch((err: unknown) => {
        log.error({ err }, 'embedded Postgres did not stop cleanly');
        return undefined;
      });
      if (outcome === 'stopped') log.info('embedded Postgres stopped');
      else if (outcome === 'left_running') log.info({ dataDir: dev.dataDir }, 'embedded Postgres left running: other pgrelay processes use it, and one of them takes it over');
      else if (outcome === 'attached') log.info({ dataDir: dev.dataDir }, 'embedded Postgres left running: it belongs to the npm start that started it');
    }
  };
  /** {@link release}, then exit with `code`. */
  const stop = async (signal: string, code = 0, failure?: PgRelayError) => {
    if (stopping) return;
    stopping = true;
    if (failure) log.error({ code: failure.code }, failure.message);
    else log.info({ signal }, 'pgrelay stopping');
    const hardStop = setTimeout(() => process.exit(1), 10_000);
    hardStop.unref();
    await release();
    if (failure) process.stderr.write(`pgrelay: ${describeError(failure)}\n`);
    process.exit(code);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  // npm killed outright (or a shell that took the signal for itself): stop as on SIGTERM, see relay/ops/parent-watch.ts
  if (startedByPackageScript()) {
    watchParent((parent) => {
      log.info({ parent }, `the npm process that started pgrelay (pid ${parent}) is gone`);
      void stop('parent exited');
    });
  }

  try {
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      log.info({ stateDir: config.dataDir }, 'no DATABASE_URL: starting the embedded Postgres');
      dev = await startDevDatabase(config.dataDir, (err) => log.warn({ err: err.message }, 'lost the embedded Postgres owner lock (this process stalled); another npm start may own it now'));
      databaseUrl = dev.url;
      log.info({ dataDir: dev.dataDir, stateDir: dev.stateDir }, `embedded Postgres data lives in ${dev.dataDir}; its URL is in ${dev.stateDir}/database-url`);
      if (!dev.owned) {
        log.info({ lock: dev.lock.file }, 'attached to the embedded Postgres another npm start owns: stopping this one leaves it running');
      }
    }
    const jwtSecret = config.jwtSecret ?? dev?.devSecret;
    const noSecret = !jwtSecret && !config.jwksUrl
      ? 'Set RELAY_JWT_SECRET (an HS256 secret of at least 32 characters) or RELAY_JWKS_URL so that the relay can verify client tokens.'
      : undefined;
    // the database first: a user fixing DATABASE_URL learns whether it answers now, and about the secret in the same breath
    const database = await checkDatabase(databaseUrl).catch((err: unknown) => {
      throw noSecret && err instanceof PgRelayError ? configProblems([err.message, noSecret]) : err;
    });
    if (noSecret) throw new ConfigError(noSecret);
    log.info({ database: safeUrl(databaseUrl), serverVersionNum: database.serverVersionNum, role: database.role }, 'database reachable');
    // the embedded database is local and its superuser the developer's own; a DATABASE_URL is what gets deployed
    if (database.superuser && !dev) {
      log.warn({ role: database.role }, `connected as ${database.role}, a superuser: the relay needs only relay_reader; run it as a login role of its own (create role pgrelay login password '…' in role relay_reader) and keep the superuser for pgrelay migrate`);
    }
    // a current schema is left alone, so that the relay's own role (which may not change it) can start
    const applied = await migrateIfBehind(databaseUrl);
    log.info({ applied }, applied.length ? `applied ${applied.length} migration(s)` : 'migrations up to date');

    // the console mints dev tokens only with the dev secret of the embedded database, never with a secret of yours
    const devMode = dev && !config.jwtSecret && !config.jwksUrl ? { secret: dev.devSecret, stateDir: dev.stateDir } : undefined;
    relay = await startRelay({ config: { ...config, databaseUrl, jwtSecret }, log, server, ...(devMode ? { dev: devMode } : {}) });
    if (dev) {
      supervisor = new ClusterSupervisor({ dev, log, onGiveUp: (err) => void stop('embedded Postgres down', 1, err) });
      supervisor.start();
    }
  } catch (err) {
    // Whatever stopped start-up (a port in use, a bad setting, an unreachable database), the embedded Postgres this
    // process started does not outlive it; one another process owns is left alone (DevDatabase.stop decides).
    if (stopping) return new Promise<never>(() => undefined); // a signal's stop() is releasing and exits
    stopping = true;
    await release();
    throw err;
  }
  const shown = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  log.info({ port: relay.port, position: relay.position, compression: config.compression }, `pgrelay listening on http://${shown}:${relay.port} (WebSocket ws://${shown}:${relay.port}/ws, health /healthz, console /)`);
  if (dev && !config.jwtSecret) {
    log.info(`development tokens: npm run pgrelay -- token --tenant <id> (signed with the dev secret in ${dev.stateDir}/dev-jwt-secret)`);
  }
  if (relay.watched.length === 0) {
    log.info({ next: watchCommand(dev?.stateDir) }, `no table is watched yet; watch one with: ${watchCommand(dev?.stateDir)}`);
  }
  if (stopping) await relay.close();
}
