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

export async function leakBaseline(database: string): Promise<LeakBaseline> {
  const sockets = openSockets();
  return { sockets, sessions: (await sessions(database)).length, probes: new Map([...probes].map(([k, f]) => [k, f()])) };
}

/** Throws an error listing what is still open compared with `baseline`, after giving closes `timeoutMs` to land. */
export async function checkLeaks(database: string, baseline: LeakBaseline, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const problems: string[] = [];
    if (openClients.size > 0) problems.push(`${openClients.size} pg client(s) never ended`);
    const sockets = openSockets();
    if (sockets > baseline.sockets) problems.push(`${sockets - baseline.sockets} socket(s) still open`);
    for (const [name, count] of probes) {
      const before = baseline.probes.get(name) ?? 0;
      const now = count();
      if (now > before) problems.push(`${now - before} ${name} still open`);
    }
    const live = await sessions(database);
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
