// bench:presence: what presence costs, a join storm, an idle window and a leave storm of members over several relays.
import pg from 'pg';
import { freePort } from '../../client/shared/free-port.js';
import { migrate } from '../../db/migrate.js';
import { sleep } from '../../db/testing/wait.js';
import type { Flags } from '../lib/args.js';
import type { Benchmark } from '../lib/benchmark.js';
import { bytes, int, ms, table } from '../lib/format.js';
import { httpGet } from '../lib/http-get.js';
import { describeMachine, machine } from '../lib/machine.js';
import { percentile } from '../lib/median.js';
import { messageWorker } from '../lib/message-worker.js';
import type { BenchPostgres } from '../lib/postgres.js';
import { postmasterPid, serverCpuSeconds } from '../lib/postgres-cpu.js';
import { cpuSeconds, loadCpu } from '../lib/processes.js';
import { writeSection } from '../lib/results.js';
import { spawnRelay } from '../lib/targets.js';

const SECRET = 'presence-bench-secret-presence-bench-secret';

/** pgrelay_presence_statements_total by kind, summed over the relays. */
async function statements(ports: number[]): Promise<Record<string, number>> {
  const out: Record<string, number> = { sync: 0, read: 0, sweep: 0 };
  for (const port of ports) {
    for (const line of (await httpGet(`http://127.0.0.1:${port}/metrics`)).body.split('\n')) {
      const m = /^pgrelay_presence_statements_total\{kind="(\w+)"\} (\d+)/.exec(line);
      if (m) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
    }
  }
  return out;
}

async function run(flags: Flags, postgres: BenchPostgres, command: string): Promise<void> {
  const sockets = flags.num('sockets', 5000);
  const tenants = flags.num('tenants', 50);
  const relayCount = flags.num('relays', 2);
  const workers = Math.max(1, Math.min(flags.num('workers', 4), sockets));
  const ttlMs = flags.num('ttl-ms', 15_000);
  const idleMs = flags.num('idle-ms', 5000);
  /** Let the load workers use every CPU (the relays' too) instead of the load CPU alone. */
  const spread = flags.bool('spread-load');
  const box = machine();
  const url = await postgres.createDatabase('presence_bench');
  await migrate(url);
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const postmaster = await postmasterPid(db);
  let notifications = 0;
  db.on('notification', (n) => n.channel === 'relay_presence' && notifications++);
  await db.query('listen relay_presence');

  const ports = await Promise.all(Array.from({ length: relayCount }, () => freePort()));
  const relays = ports.map((port, k) =>
    spawnRelay({ name: `relay-${k + 1}`, databaseUrl: url, port, secret: SECRET, nofile: Math.ceil(sockets / relayCount) * 2 + 1000, env: { RELAY_PRESENCE_TTL_MS: String(ttlMs) } }));
  await Promise.all(relays.map((r) => r.waitFor(/pgrelay listening on/, 90_000)));

  // The clients live in worker processes (the real client library over `ws`), pinned to the load CPU.
  const pool = Array.from({ length: workers }, (_, k) =>
    messageWorker('bench/load/presence-clients.ts', { name: `clients-${k}`, ...(spread ? {} : { cpu: loadCpu }), nofile: Math.ceil(sockets / workers) * 2 + 1000 }));
  await Promise.all(pool.map((p) => p.next('ready', 60_000)));
  const share = Math.ceil(sockets / workers);
  const urls = ports.map((port) => `ws://127.0.0.1:${port}/ws`);
  pool.forEach((p, k) => p.send({ type: 'start', urls, secret: SECRET, sockets, tenants, first: k * share, count: Math.max(0, Math.min(share, sockets - k * share)) }));
  await Promise.all(pool.map((p) => p.next('connected', 300_000)));
  console.error(`${sockets} clients connected to ${relayCount} relays in ${workers} workers`);
  await sleep(1000);

  type Report = { done: number[]; frames: number; bytes: number; complete: boolean };
  const reports = async () => {
    for (const p of pool) p.send({ type: 'report' });
    return (await Promise.all(pool.map((p) => p.next('report', 30_000)))) as unknown as Report[];
  };
  const snapshot = async () => ({
    at: performance.timeOrigin + performance.now(),
    relays: relays.map((r) => cpuSeconds(r.pid)),
    postgres: serverCpuSeconds(postmaster),
    statements: await statements(ports),
    notifications,
  });
  const rows: Array<Array<string | number>> = [];
  /** Runs one phase: sends `command`, waits until every socket's list is right (`idle`: for `waitMs`), and adds its row. */
  const phase = async (name: string, command: 'join' | 'leave' | 'idle', waitMs: number) => {
    const idle = command === 'idle';
    const before = await snapshot();
    const t0 = performance.timeOrigin + performance.now();
    for (const p of pool) p.send({ type: command });
    let r: Report[] = [];
    const deadline = Date.now() + waitMs;
    for (;;) {
      await sleep(idle ? waitMs : 100);
      r = await reports();
      if (idle || r.every((x) => x.complete) || Date.now() > deadline) break;
    }
    const after = await snapshot();
    const times = r.flatMap((x) => x.done).filter((t) => t > 0).map((t) => t - t0).sort((a, b) => a - b);
    const waited = r.flatMap((x) => x.done).filter((t) => t >= 0).length;
    const s = (k: string) => (after.statements[k] ?? 0) - (before.statements[k] ?? 0);
    const frames = r.reduce((n, x) => n + x.frames, 0);
    const got = r.reduce((n, x) => n + x.bytes, 0);
    rows.push([
      name,
      idle ? '—' : `${int(times.length)} / ${int(waited)}`,
      idle ? `— (a ${ms(after.at - before.at)} ms window)` : `${ms(percentile(times, 50))} / ${ms(percentile(times, 99))} / ${ms(times.at(-1) ?? NaN)}`,
      after.relays.map((c, k) => (c - before.relays[k]!).toFixed(2)).join(' + '),
      Number.isFinite(after.postgres) ? (after.postgres - before.postgres).toFixed(2) : 'n/a',
      `${s('sync')} / ${s('read')} / ${s('sweep')}`,
      int(after.notifications - before.notifications),
      `${int(frames)} (${bytes(got)})`,
    ]);
  };

  await phase('baseline: connected, no one in presence', 'idle', idleMs);
  await phase('join storm', 'join', 120_000);
  await phase('idle, everyone present', 'idle', idleMs);
  await phase('leave storm (half of each tenant)', 'leave', 120_000);
  for (const p of pool) p.send({ type: 'stop' });
  await db.end();
  const md = [
    `## Presence: ${int(sockets)} sockets over ${tenants} tenants on ${relayCount} relays`,
    '',
    `\`${command}\`, ${new Date().toISOString()}. ${int(sockets)} sockets (each its own member) over ${tenants} tenants, ${relayCount} relays on CPU 0, RELAY_PRESENCE_TTL_MS=${ttlMs}; ` +
      `clients of the client library in ${workers} worker processes${spread ? ' free to use every CPU' : ' on the load CPU'}. One run (no repeats: read the figures as one sample).`,
    '',
    `Machine: ${describeMachine(box)}. Postgres: ${postgres.description}.`,
    '',
    table(
      ['phase', 'sockets done', 'time to the right list, ms (p50 / p99 / max)', 'relay CPU, s (each)', 'Postgres CPU, s', 'presence statements (sync / read / sweep)', 'NOTIFYs', 'presence frames received'],
      rows,
    ),
    '',
    'Times run from the coordinator sending the command to each worker until that socket\'s list was right; CPU and counts from just before it until every socket was done (or the window ended).',
  ].join('\n');
  console.log(md);
  if (flags.bool('record')) await writeSection('presence', md);
}

/**
 * What presence costs (issue 14, `npm run bench:presence`): S sockets over T tenants, spread over R relay processes on one
 * Postgres, each socket its own member. Baseline: the sockets connected, no one in presence (the relays' ticker polls
 * Postgres meanwhile: this is what presence adds to). Join storm: every socket joins at once; done when every socket's
 * list holds its whole tenant. Idle: everyone present, nothing changing (heartbeats and sweeps). Leave storm: half of
 * each tenant leaves at once; done when every socket that stayed sees only those who stayed. For each phase: the time
 * until the last socket's list was right (p50, p99, max), the relays' CPU and Postgres's (every backend), presence
 * statements and NOTIFYs, and the presence frames the clients received.
 */
export const presence: Benchmark = {
  name: 'presence',
  title: 'What presence costs: join storm, idle and leave storm of S members over R relays; list times, CPU, statements, NOTIFYs',
  usage: `--sockets 5000 --tenants 50 --relays 2 --workers 4 --ttl-ms 15000 --idle-ms 5000 --spread-load (load workers on any CPU)
--record (writes its section; without it the table is printed only)`,
  run: async (flags, ctx) => run(flags, await ctx.postgres(), ctx.command),
};
