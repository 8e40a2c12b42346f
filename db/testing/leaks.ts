// Makes a test fail when it leaves a pg client, a Postgres session (LISTEN or pooled), a socket or (when asked) a timer open.
import pg from 'pg';
import { afterEach, beforeEach, inject } from 'vitest';
import { withDatabase } from './global-setup.js';
import { until } from './wait.js';
import { TICKER_APPLICATION_NAME } from '../ticker/ticker-options.js';

const openClients = new Set<pg.Client>();
const probes = new Map<string, () => number>();

/** Registers a client the test must end; returns it. */
export function trackClient<C extends pg.Client>(client: C): C {
  openClients.add(client);
  client.once('end', () => openClients.delete(client));
  return client;
}

/** Counts something else that must return to its level, e.g. a relay's open WebSockets. Returns an unregister function. */
export function registerLeakProbe(name: string, count: () => number): () => void {
  probes.set(name, count);
  return () => probes.delete(name);
}

/** What was open before a test. */
export interface LeakBaseline {
  sockets: number;
  /** Pending timers, when they are counted (see {@link LeakGuardOptions.timers}). */
  timers?: number;
  sessions: number;
  /** Sessions of live relays (not counted in `sessions`): their sockets are in this process too. */
  relaySessions: number;
  probes: Map<string, number>;
}

function openSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap' || r === 'PipeWrap').length;
}

function pendingTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

async function sessions(database: string | undefined): Promise<Array<{ pid: number; application_name: string; query: string }>> {
  if (database === undefined) return [];
  const admin = new pg.Client({ connectionString: withDatabase(inject('pgAdminUrl'), 'postgres') });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ pid: number; application_name: string; query: string }>(
      `select pid, application_name, left(query, 60) as query from pg_stat_activity where datname = $1 and backend_type = 'client backend'`,
      [database],
    );
    return rows;
  } finally {
    await admin.end();
  }
}

/**
 * Whether a session counts. While a relay the file started is alive (its socket probe is registered), its own sessions
 * come and go as they should: the pool opens another connection under load and the ticker candidate reconnects after
 * its idle timeout, in the middle of any test. Those are not leaks, and they made unrelated tests fail on a loaded
 * machine; a relay left open is still caught by its socket probe and, once it is closed, by every session it had.
 */
function counted(s: { application_name: string }): boolean {
  const relayAlive = [...probes.keys()].some((k) => k.startsWith('relay:'));
  return !(relayAlive && (s.application_name === 'pgrelay' || s.application_name === TICKER_APPLICATION_NAME));
}

/** What is open now: the baseline {@link checkLeaks} compares with. `database` undefined: a test that opens none. */
export async function leakBaseline(database: string | undefined, options: { timers?: boolean } = {}): Promise<LeakBaseline> {
  const sockets = openSockets();
  const all = await sessions(database);
  const kept = all.filter(counted).length;
  return {
    sockets,
    ...(options.timers ? { timers: pendingTimers() } : {}),
    sessions: kept,
    relaySessions: all.length - kept,
    probes: new Map([...probes].map(([k, f]) => [k, f()])),
  };
}

/** What is open now and was not at `baseline`, one phrase each. */
async function leaksSince(database: string | undefined, baseline: LeakBaseline): Promise<string[]> {
  const problems: string[] = [];
  if (openClients.size > 0) problems.push(`${openClients.size} pg client(s) never ended`);
  const all = await sessions(database);
  const live = all.filter(counted);
  // a live relay's extra pool or ticker connection is a socket of this process too
  const allowed = baseline.sockets + Math.max(0, all.length - live.length - baseline.relaySessions);
  const sockets = openSockets();
  if (sockets > allowed) problems.push(`${sockets - allowed} socket(s) still open`);
  if (baseline.timers !== undefined) {
    const timers = pendingTimers();
    if (timers > baseline.timers) problems.push(`${timers - baseline.timers} timer(s) still pending`);
  }
  for (const [name, count] of probes) {
    const before = baseline.probes.get(name) ?? 0;
    const now = count();
    if (now > before) problems.push(`${now - before} ${name} still open`);
  }
  if (live.length > baseline.sessions) {
    const shown = live.map((s) => `${s.application_name || 'no application_name'}: ${s.query}`).join('; ');
    problems.push(`${live.length - baseline.sessions} Postgres session(s) still connected (${shown})`);
  }
  return problems;
}

/**
 * Throws an error listing what is still open compared with `baseline`, after giving closes `timeoutMs` to land. 6 s, not
 * less: `fetch` (the client's SSE transport) keeps a finished request's connection for reuse until the server's
 * `Keep-Alive: timeout=5` less a second, and the fallback server closes its end then too. Measured: a refused SSE
 * subscription's connection and its server end stayed open 3 s after the client closed, and CI failed a test on them.
 */
export async function checkLeaks(database: string | undefined, baseline: LeakBaseline, timeoutMs = 6000): Promise<void> {
  let problems: string[] = [];
  await until(async () => (problems = await leaksSince(database, baseline)).length === 0, { timeoutMs, intervalMs: 50 }).catch((err: Error) => {
    // a look that failed (the admin connection, say) is said as itself, not as a leak
    if (err.cause !== undefined) throw err.cause;
    throw new Error(`The test leaked: ${problems.join(', ')}.`);
  });
}

/** Options of {@link leakGuard}. */
export interface LeakGuardOptions {
  /** Names the file's database, whose sessions are counted; without it (a test that opens no database) none are. */
  database?: () => string;
  /**
   * Counts pending timers too (the client's reconnect, heartbeat and refresh timers), for files that run no relay or
   * pool of their own in the process (those keep timers of their own between tests).
   */
  timers?: boolean;
  /** How long closes get to land after the test. Default 6 s (see {@link checkLeaks}). */
  timeoutMs?: number;
}

/** Fails every test of the file that leaves more open than it found. `database()` names the file's database. */
export function leakGuard(database: () => string): void;
export function leakGuard(options: LeakGuardOptions): void;
export function leakGuard(arg: (() => string) | LeakGuardOptions): void {
  const { database, timers = false, timeoutMs } = typeof arg === 'function' ? { database: arg } : arg;
  let baseline: LeakBaseline | undefined;
  beforeEach(async () => {
    baseline = await leakBaseline(database?.(), { timers });
  });
  afterEach(async () => {
    if (baseline) await checkLeaks(database?.(), baseline, timeoutMs);
  });
}
