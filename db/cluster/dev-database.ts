// The embedded development database `npm start` runs when no DATABASE_URL is given, and its dev JWT secret.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { PgRelayError } from '../../client/shared/errors.js';
import { ClusterLock } from './cluster-lock.js';
import { EmbeddedServer, reachableByPostgres } from './embedded-server.js';

/** What {@link DevDatabase.stop} did with the cluster. */
export type DevStopOutcome =
  /** This process owned the cluster and was the last pgrelay on it: the cluster is stopped. */
  | 'stopped'
  /** Other pgrelay processes still use the cluster: it keeps running and one of them takes it over. */
  | 'left_running'
  /** Another live `npm start` owns the cluster: this one only attached, and leaves it alone. */
  | 'attached';

/** A running development database. */
export interface DevDatabase {
  /** Connection URL of the `pgrelay` database. */
  url: string;
  /** Where the cluster's files live. */
  dataDir: string;
  /** The folder holding pgrelay's own dev state (`RELAY_DATA_DIR`). */
  stateDir: string;
  /** An HS256 secret generated once and kept in the state folder. */
  devSecret: string;
  /** The cluster itself (the supervisor restarts it through this). */
  server: EmbeddedServer;
  /** Held by the process that owns the cluster; `owned` says whether that is this one. */
  lock: ClusterLock;
  /** This process started (or adopted) the cluster and is responsible for it. */
  readonly owned: boolean;
  /** Stops the cluster if this process owns it (or can take it over) and no other pgrelay is attached; see {@link DevStopOutcome}. */
  stop(): Promise<DevStopOutcome>;
}

interface DevState { port: number; password: string; dataDir: string }

/** How long a second `npm start` waits for the owner to get its cluster running (a first initdb takes a while). */
const ATTACH_TIMEOUT_MS = 120_000;

function readState(stateFile: string): Partial<DevState> {
  return existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as DevState) : {};
}

/**
 * Starts (or reuses) the cluster whose state lives in `stateDir`. The first `npm start` takes the folder's
 * owner lock and starts the cluster; a second one attaches to it and never stops it. As root, Postgres runs as
 * the `postgres` user, which must reach its data folder: when it cannot reach `stateDir`, the cluster lives
 * under the OS temp dir and `stateDir/state.json` says where.
 */
export async function startDevDatabase(stateDir: string, onLockLost?: (err: Error) => void): Promise<DevDatabase> {
  stateDir = path.resolve(stateDir);
  await fs.mkdir(stateDir, { recursive: true, mode: 0o755 });
  const stateFile = path.join(stateDir, 'state.json');
  const lock = new ClusterLock(stateDir, onLockLost);
  let owned = await lock.tryAcquire();
  // Not the owner: wait until the owner's cluster runs (its state file says where), or until the owner is gone.
  for (const deadline = Date.now() + ATTACH_TIMEOUT_MS; !owned;) {
    const saved = readState(stateFile);
    if (saved.dataDir && saved.password && new EmbeddedServer({ dataDir: saved.dataDir }).runningPort() !== undefined) break;
    if (Date.now() > deadline) {
      throw new PgRelayError('embedded_unavailable', `Another npm start owns the embedded Postgres of ${stateDir} (${lock.file}) but has not started it within ${ATTACH_TIMEOUT_MS / 1000} s; stop it, or set DATABASE_URL.`);
    }
    await new Promise((r) => setTimeout(r, 200));
    owned = await lock.tryAcquire();
  }

  const saved = readState(stateFile);
  const dataDir = saved.dataDir ?? (reachableByPostgres(path.join(stateDir, 'pgdata'))
    ? path.join(stateDir, 'pgdata')
    : path.join(os.tmpdir(), `pgrelay-${createHash('sha256').update(stateDir).digest('hex').slice(0, 12)}`, 'pgdata'));
  const password = saved.password ?? randomBytes(16).toString('hex');
  // commit timestamps make relay.transactions.committed_at (and `at` on the wire) the exact commit time
  const server = new EmbeddedServer({ dataDir, password, settings: { track_commit_timestamp: 'on' }, ...(saved.port ? { port: saved.port } : {}) });
  const url = () => server.url('pgrelay');
  try {
    if (owned) {
      await server.start();
      await writeSecretFile(stateFile, JSON.stringify({ port: server.port, password, dataDir } satisfies DevState, null, 2));
      const admin = new pg.Client({ connectionString: server.url('postgres') });
      await admin.connect();
      try {
        const { rowCount } = await admin.query(`select 1 from pg_database where datname = 'pgrelay'`);
        if (!rowCount) await admin.query('create database pgrelay');
      } finally {
        await admin.end();
      }
      await writeSecretFile(path.join(stateDir, 'database-url'), `${url()}\n`);
    } else {
      server.attach();
      // the owner writes the URL once its database exists
      for (const deadline = Date.now() + ATTACH_TIMEOUT_MS; !existsSync(path.join(stateDir, 'database-url')) && Date.now() < deadline;) {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } catch (err) {
    // a cluster this process started does not outlive its failed start-up (one that other pgrelays use keeps running)
    if (owned && (await otherRelays(server.url('postgres'))) === 0) await server.stop().catch(() => undefined);
    await lock.release();
    throw err;
  }

  const secretFile = path.join(stateDir, 'dev-jwt-secret');
  let devSecret = existsSync(secretFile) ? readFileSync(secretFile, 'utf8').trim() : '';
  if (devSecret.length < 32 && owned) {
    devSecret = randomBytes(32).toString('base64url');
    await writeSecretFile(secretFile, `${devSecret}\n`);
  }
  for (const deadline = Date.now() + ATTACH_TIMEOUT_MS; devSecret.length < 32 && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 200));
    devSecret = existsSync(secretFile) ? readFileSync(secretFile, 'utf8').trim() : '';
  }

  return {
    url: url(), dataDir, stateDir, devSecret, server, lock,
    get owned() {
      return lock.held;
    },
    async stop() {
      // an owner that went away without stopping the cluster (killed) leaves it to whoever leaves last
      if (!(await lock.tryAcquire())) return 'attached';
      if ((await otherRelays(server.url('postgres'))) > 0) {
        await lock.release();
        return 'left_running';
      }
      try {
        await server.stop();
      } finally {
        await lock.release();
      }
      return 'stopped';
    },
  };
}

/**
 * pgrelay processes (relays and tails, by the application_name of their LISTEN sessions, see relay/feed/listen-session.ts)
 * still connected to the cluster. Our own session was closed just before: give its backend a moment to go.
 */
async function otherRelays(adminUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    for (let i = 0; ; i++) {
      const { rows } = await client.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where application_name = 'pgrelay-listener' and pid <> pg_backend_pid()`,
      );
      if (rows[0]!.n === 0 || i >= 20) return rows[0]!.n;
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch {
    return 0; // the cluster does not answer: nobody can be using it
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function writeSecretFile(file: string, content: string): Promise<void> {
  await fs.writeFile(file, content, { mode: 0o600 });
  await fs.chmod(file, 0o600);
}
