// Makes a test fail when it leaves a pg client, a Postgres session (LISTEN or pooled) or a socket open.
import pg from 'pg';
import { afterEach, beforeEach, inject } from 'vitest';
import { withDatabase } from './global-setup.js';

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
  sessions: number;
  /** Sessions of live relays (not counted in `sessions`): their sockets are in this process too. */
  relaySessions: number;
  probes: Map<string, number>;
}

function openSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap' || r === 'PipeWrap').length;
}

async function sessions(database: string): Promise<Array<{ pid: number; application_name: string; query: string }>> {
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
  return !(relayAlive && (s.application_name === 'pgrelay' || s.application_name === 'pgrelay-ticker'));
}

export async function leakBaseline(database: string): Promise<LeakBaseline> {
  const sockets = openSockets();
  const all = await sessions(database);
  const kept = all.filter(counted).length;
  return { sockets, sessions: kept, relaySessions: all.length - kept, probes: new Map([...probes].map(([k, f]) => [k, f()])) };
}

/**
 * Throws an error listing what is still open compared with `baseline`, after giving closes `timeoutMs` to land. 6 s, not
 * less: `fetch` (the client's SSE transport) keeps a finished request's connection for reuse until the server's
 * `Keep-Alive: timeout=5` less a second, and the fallback server closes its end then too. Measured: a refused SSE
 * subscription's connection and its server end stayed open 3 s after the client closed, and CI failed a test on them.
 */
export async function checkLeaks(database: string, baseline: LeakBaseline, timeoutMs = 6000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const problems: string[] = [];
    if (openClients.size > 0) problems.push(`${openClients.size} pg client(s) never ended`);
    const all = await sessions(database);
    const live = all.filter(counted);
    // a live relay's extra pool or ticker connection is a socket of this process too
    const allowed = baseline.sockets + Math.max(0, all.length - live.length - baseline.relaySessions);
    const sockets = openSockets();
    if (sockets > allowed) problems.push(`${sockets - allowed} socket(s) still open`);
    for (const [name, count] of probes) {
      const before = baseline.probes.get(name) ?? 0;
      const now = count();
      if (now > before) problems.push(`${now - before} ${name} still open`);
    }
    if (live.length > baseline.sessions) {
      const shown = live.map((s) => `${s.application_name || 'no application_name'}: ${s.query}`).join('; ');
      problems.push(`${live.length - baseline.sessions} Postgres session(s) still connected (${shown})`);
    }
    if (problems.length === 0) return;
    if (Date.now() > deadline) throw new Error(`The test leaked: ${problems.join(', ')}.`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Fails every test of the file that leaves more open than it found. `database()` names the file's database. */
export function leakGuard(database: () => string): void {
  let baseline: LeakBaseline | undefined;
  beforeEach(async () => {
    baseline = await leakBaseline(database());
  });
  afterEach(async () => {
    if (baseline) await checkLeaks(database(), baseline);
  });
}
