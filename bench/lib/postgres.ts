// The Postgres a benchmark run uses: its own embedded server (pinned next to the load), or one given by URL; one fresh database per target.
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedServer } from '../../db/cluster/embedded-server.js';
import { childPids, loadCpu, onCleanup, pin, taskset } from './processes.js';

/**
 * Settings of the server a run owns. Durability is off because these benchmarks measure the path from
 * commit to socket, not the disk: the capture's own cost is `npm run bench:capture`'s job.
 */
const benchServerSettings = {
  fsync: 'off',
  full_page_writes: 'off',
  synchronous_commit: 'off',
  max_connections: 300,
  shared_buffers: '256MB',
};

export interface BenchPostgres {
  /** A superuser URL of the maintenance database. */
  readonly adminUrl: string;
  /** One line for RESULTS.md. */
  readonly description: string;
  /** Creates (or recreates) a database and returns its URL; it is dropped at cleanup. */
  createDatabase(name: string): Promise<string>;
  dropDatabase(name: string): Promise<void>;
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

async function adminQuery(adminUrl: string, sql: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

/**
 * `--database-url` or `TEST_DATABASE_URL` when given (a superuser, or a role that may create databases), else an embedded
 * server with {@link benchServerSettings} and `o.settings` on top (e.g. pg_stat_statements preloaded).
 */
export async function startPostgres(givenUrl: string | undefined, o: { pin?: boolean; settings?: Record<string, string | number> } = {}): Promise<BenchPostgres> {
  let adminUrl: string;
  let description: string;
  if (givenUrl) {
    adminUrl = givenUrl;
    const v = await adminQuery(adminUrl, 'show server_version');
    description = `given server (PostgreSQL ${String(v.rows[0]?.server_version)}), its own settings`;
  } else {
    // As root Postgres runs as `postgres`, which must be able to reach the data folder.
    const base = await mkdtemp(path.join(os.tmpdir(), 'pgrelay-sidebyside-'));
    await chmod(base, 0o755);
    const settings = { ...benchServerSettings, ...o.settings };
    const server = new EmbeddedServer({ dataDir: path.join(base, 'pgdata'), settings });
    onCleanup(async () => {
      await server.destroy();
      await rm(base, { recursive: true, force: true });
    });
    await server.start();
    adminUrl = server.url('postgres');
    const v = await adminQuery(adminUrl, 'show server_version');
    const pid = Number((await readFile(path.join(server.dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    // Backends fork from the postmaster and inherit its CPU: the server under test keeps CPU 0 to itself.
    const pinned = taskset && o.pin !== false;
    if (pinned) for (const p of [pid, ...childPids(pid)]) pin(p, loadCpu);
    description =
      `embedded PostgreSQL ${String(v.rows[0]?.server_version)}${pinned ? ` pinned to CPU ${loadCpu}` : ', not pinned'}, ` +
      Object.entries(settings).map(([k, val]) => `${k}=${val}`).join(' ');
  }
  const created = new Set<string>();
  const dropDatabase = async (name: string) => {
    await adminQuery(adminUrl, `drop database if exists ${name} with (force)`);
    created.delete(name);
  };
  onCleanup(async () => {
    for (const name of [...created]) await dropDatabase(name).catch(() => undefined);
  });
  return {
    adminUrl,
    description,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`Bad database name ${name}.`);
      await dropDatabase(name);
      await adminQuery(adminUrl, `create database ${name}`);
      created.add(name);
      return withDatabase(adminUrl, name);
    },
    dropDatabase,
  };
}
