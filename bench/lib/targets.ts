// The servers under test, how to prepare their database, start them pinned to CPU 0, and reach them.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../../client/shared/free-port.js';
import { migrate } from '../../db/migrate.js';
import { sleep } from '../../db/testing/wait.js';
import { serverCpu, spawnNode, type Spawned } from './processes.js';

/**
 * `pgrelay-poll` is pgrelay with its ticker polling every few ms instead of resting (`relay.wake = off` on its
 * database: what pgrelay 0.2 did everywhere), to measure what resting saves in the same run.
 */
export const targetNames = ['pgrelay', 'pgrelay-poll', 'socketio', 'ws'] as const;
export type TargetName = (typeof targetNames)[number];

/** How each target is named in tables: the baselines are A and B throughout. */
export const targetLabel: Record<TargetName, string> = { pgrelay: 'pgrelay', 'pgrelay-poll': 'pgrelay, ticker polling', socketio: 'A (Socket.IO)', ws: 'B (ws)' };

/** pgrelay itself (its protocol, schema and readiness), whatever its ticker does. */
export function isPgrelay(target: TargetName): boolean {
  return target === 'pgrelay' || target === 'pgrelay-poll';
}

/** The `--targets` and `--quick` line of a side-by-side benchmark's usage. */
export const targetsUsage = '--targets pgrelay,socketio,ws (also pgrelay-poll)   --quick (small scale, about a minute)';

export function parseTargets(list: readonly string[]): TargetName[] {
  for (const t of list) if (!(targetNames as readonly string[]).includes(t)) throw new Error(`Unknown target ${JSON.stringify(t)}; use ${targetNames.join(', ')}.`);
  return targetNames.filter((t) => list.includes(t));
}

/** The table every benchmark writes (bench/lib/orders.sql), the same for every target. */
export const ordersSql = new URL('./orders.sql', import.meta.url);

const sql = (file: string | URL) => readFile(fileURLToPath(new URL(file, import.meta.url)), 'utf8');

/** Creates `orders` and the target's capture: `relay.watch` for pgrelay, the row NOTIFY trigger for the baselines. */
export async function prepareDatabase(url: string, target: TargetName): Promise<void> {
  if (isPgrelay(target)) await migrate(url);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(await sql(ordersSql));
    if (isPgrelay(target)) await c.query(`select relay.watch('orders', 'tenant_id')`);
    else await c.query(await sql('../baselines/orders-notify.sql'));
    // writers send no wake-up there, so the ticker polls (it reads the setting when it starts)
    if (target === 'pgrelay-poll') await c.query(`do $$ begin execute format('alter database %I set relay.wake = off', current_database()); end $$`);
  } finally {
    await c.end();
  }
}

/** A running server under test. */
export interface TargetServer {
  readonly target: TargetName;
  readonly port: number;
  /** `ws://127.0.0.1:<port>`; each target adds its own path. */
  readonly baseUrl: string;
  readonly process: Spawned;
  /** Runs a full GC in the server (our SIGUSR2 hook, loaded into all three alike) and returns its memory use just after. */
  gc(): Promise<NodeJS.MemoryUsage | undefined>;
  stop(): Promise<void>;
}

export interface StartOptions {
  databaseUrl: string;
  jwtSecret: string;
  /** Open-files limit for the server (sockets). */
  nofile?: number;
  /** Extra environment, e.g. `RELAY_HISTORY_TX`. */
  env?: NodeJS.ProcessEnv;
  echo?: boolean;
}

/** What {@link spawnRelay} starts: a relay on `port` of `databaseUrl` that takes HS256 tokens signed with `secret`. */
export interface RelayOptions {
  name: string;
  databaseUrl: string;
  port: number;
  secret: string;
  /** Open-files limit (its sockets). */
  nofile?: number;
  /** Extra environment (RELAY_PRESENCE_TTL_MS, LOG_LEVEL…). */
  env?: NodeJS.ProcessEnv;
  /** Pinned to the server CPU (default), or free to use any, as users run it. */
  pinned?: boolean;
}

/** A relay process (`relay/cli.ts start`), JSON logs on 127.0.0.1; the caller waits for it ("pgrelay listening on", /readyz). */
export function spawnRelay(o: RelayOptions): Spawned {
  return spawnNode('relay/cli.ts', {
    name: o.name,
    args: ['start'],
    ...(o.pinned === false ? {} : { cpu: serverCpu }),
    ...(o.nofile ? { nofile: o.nofile } : {}),
    env: { DATABASE_URL: o.databaseUrl, PORT: String(o.port), HOST: '127.0.0.1', RELAY_JWT_SECRET: o.secret, LOG_LEVEL: 'info', LOG_FORMAT: 'json', ...o.env },
  });
}

const scripts: Record<TargetName, { script: string; args: string[]; ready: RegExp }> = {
  pgrelay: { script: 'relay/cli.ts', args: ['start'], ready: /pgrelay listening on/ },
  'pgrelay-poll': { script: 'relay/cli.ts', args: ['start'], ready: /pgrelay listening on/ },
  socketio: { script: 'bench/baselines/socketio-server.ts', args: [], ready: /listening on/ },
  ws: { script: 'bench/baselines/ws-server.ts', args: [], ready: /listening on/ },
};

export async function startTarget(target: TargetName, o: StartOptions): Promise<TargetServer> {
  const port = await freePort();
  const { script, args, ready } = scripts[target];
  const p = spawnNode(script, {
    name: target,
    // The same flags for all three: --expose-gc and our SIGUSR2 → gc() hook, so memory is read after a full GC.
    // BENCH_SERVER_NODE_ARGS adds flags for profiling, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    nodeArgs: ['--expose-gc', '--import', './bench/lib/gc-on-signal.ts', ...(process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
    args,
    cpu: serverCpu,
    nofile: o.nofile ?? 65536,
    echo: o.echo ?? false,
    env: {
      DATABASE_URL: o.databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      RELAY_JWT_SECRET: o.jwtSecret,
      JWT_SECRET: o.jwtSecret,
      LOG_LEVEL: 'info',
      ...o.env,
    },
  });
  try {
    await p.waitFor(ready, 60_000);
    if (isPgrelay(target)) await waitReady(port, p);
  } catch (err) {
    await p.stop();
    throw err;
  }
  return {
    target,
    port,
    baseUrl: `ws://127.0.0.1:${port}`,
    process: p,
    gc: () => gcAndReport(p),
    stop: () => p.stop(),
  };
}

/** The last memory report of the SIGUSR2 hook in the output, with its number. */
function lastReport(out: string): { benchMemory: NodeJS.MemoryUsage; n: number } | undefined {
  const line = out.split('\n').findLast((l) => l.startsWith('{"benchMemory"'));
  return line ? (JSON.parse(line) as { benchMemory: NodeJS.MemoryUsage; n: number }) : undefined;
}

async function gcAndReport(p: Spawned): Promise<NodeJS.MemoryUsage | undefined> {
  if (!p.alive) return undefined;
  const before = lastReport(p.output())?.n ?? 0;
  p.child.kill('SIGUSR2');
  for (let i = 0; i < 150; i++) {
    const r = lastReport(p.output());
    if (r && r.n > before) return r.benchMemory;
    await sleep(20);
  }
  return undefined;
}

/** The relay's `/readyz` says 200 once its LISTEN session is up and caught up. */
async function waitReady(port: number, p: Spawned): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline && p.alive) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
      // A relay without /readyz yet: the stream itself is probed before every measurement.
      if (res.status === 404) return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(100);
  }
  throw new Error(`pgrelay /readyz did not answer 200 within 30 s (last: ${last}).`);
}
