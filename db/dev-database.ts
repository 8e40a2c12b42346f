// The embedded development database `npm start` runs when no DATABASE_URL is given, and its dev JWT secret.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedServer, reachableByPostgres } from './embedded-server.js';

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
  stop(): Promise<void>;
}

interface DevState { port: number; password: string; dataDir: string }

/**
 * Starts (or reuses) the cluster whose state lives in `stateDir`. As root, Postgres runs as the
 * `postgres` user, which must reach its data folder: when it cannot reach `stateDir`, the cluster
 * lives under the OS temp dir and `stateDir/state.json` says where.
 */
export async function startDevDatabase(stateDir: string): Promise<DevDatabase> {
  stateDir = path.resolve(stateDir);
  await fs.mkdir(stateDir, { recursive: true, mode: 0o755 });
  const stateFile = path.join(stateDir, 'state.json');
  const saved: Partial<DevState> = existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as DevState) : {};
  const dataDir = saved.dataDir ?? (reachableByPostgres(path.join(stateDir, 'pgdata'))
    ? path.join(stateDir, 'pgdata')
    : path.join(os.tmpdir(), `pgrelay-${createHash('sha256').update(stateDir).digest('hex').slice(0, 12)}`, 'pgdata'));
  const password = saved.password ?? randomBytes(16).toString('hex');
  const server = new EmbeddedServer({ dataDir, password, ...(saved.port ? { port: saved.port } : {}) });
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
  const url = server.url('pgrelay');
  await writeSecretFile(path.join(stateDir, 'database-url'), `${url}\n`);

  const secretFile = path.join(stateDir, 'dev-jwt-secret');
  let devSecret = existsSync(secretFile) ? readFileSync(secretFile, 'utf8').trim() : '';
  if (devSecret.length < 32) {
    devSecret = randomBytes(32).toString('base64url');
    await writeSecretFile(secretFile, `${devSecret}\n`);
  }
  return { url, dataDir, stateDir, devSecret, stop: () => server.stop() };
}

async function writeSecretFile(file: string, content: string): Promise<void> {
  await fs.writeFile(file, content, { mode: 0o600 });
  await fs.chmod(file, 0o600);
}
