// bench:relays: what the next relay costs the database, 1 to 8 relays on one Postgres, at rest and under load.
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { freePort } from '../../client/shared/free-port.js';
import { sleep } from '../../db/testing/wait.js';
import type { Flags } from '../lib/args.js';
import type { Benchmark } from '../lib/benchmark.js';
import { Fleet, runWriter, type FleetStats } from '../lib/fleet.js';
import { int, ms, table } from '../lib/format.js';
import { httpGet } from '../lib/http-get.js';
import { backgroundLoad, describeMachine, machine } from '../lib/machine.js';
import { median } from '../lib/median.js';
import { messageWorker } from '../lib/message-worker.js';
import { startPostgres, type BenchPostgres } from '../lib/postgres.js';
import { backendKindLabel, backendKinds, PostgresActivity, statementKinds, type ActivityDelta } from '../lib/postgres-activity.js';
import { cpuSeconds, loadCpu, serverCpu, type Spawned } from '../lib/processes.js';
import { writeSection } from '../lib/results.js';
import { newSecret, tokensFor } from '../lib/session.js';
import { prepareDatabase, spawnRelay } from '../lib/targets.js';
import type { WriterResult } from '../load/messages.js';

interface Options {
  counts: number[];
  rate: number;
  socketsPerRelay: number;
  membersPerRelay: number;
  tenants: number;
  seconds: number;
  warmup: number;
  restSeconds: number;
  rounds: number;
  workers: number;
}

function options(flags: Flags): Options {
  const o: Options = {
    counts: flags.list('relays', ['1', '2', '4', '8']).map(Number),
    rate: flags.num('rate', 200),
    socketsPerRelay: flags.num('sockets', 250),
    membersPerRelay: flags.num('members', 20),
    tenants: flags.num('tenants', 50),
    seconds: flags.num('seconds', 20),
    warmup: flags.num('warmup', 3),
    restSeconds: flags.num('rest', 10),
    rounds: flags.num('rounds', 2),
    workers: flags.num('workers', 2),
  };
  for (const n of o.counts) if (!Number.isInteger(n) || n < 1 || n > 32) throw new Error(`--relays takes whole numbers from 1 to 32; got ${flags.str('relays')}.`);
  if (!(o.rate > 0) || o.seconds < 5 || !Number.isInteger(o.rounds) || o.rounds < 1) throw new Error('--rate must be above 0, --seconds at least 5, --rounds a whole number ≥ 1.');
  return o;
}

const SECRET = newSecret();

/** One run's figures: at rest and under load, per second of the window unless said otherwise. */
interface Run {
  relays: number;
  round: number;
  background: number;
  rest: Window;
  load: Window & Pick<FleetStats, 'expected' | 'delivered' | 'lost' | 'duplicates' | 'wrongTenant'> & {
    transactions: number;
    p50: number;
    p99: number;
    achievedRate: number;
    writerErrors: string[];
  };
}

interface Window {
  seconds: number;
  pg: ActivityDelta;
  /** Client sessions on the database at the window's end (the relays', the writer's, the benchmark's own LISTEN). */
  sessions: number;
  /** CPU seconds of each relay process. */
  relayCpu: number[];
  /** NOTIFYs on `relay` (the ticker's) and `relay_presence`, and their payload bytes; `relay_wake` (a writer waking the ticker). */
  notifies: number;
  notifyBytes: number;
  presenceNotifies: number;
  wakes: number;
}

/** One run with `n` relays on a fresh database. */
async function runOnce(o: Options, postgres: BenchPostgres, n: number, round: number, midBase: number): Promise<Run> {
  const { rate, socketsPerRelay, membersPerRelay, tenants, seconds, warmup, restSeconds, rounds, workers } = o;
  const background = await backgroundLoad();
  process.stderr.write(`relays: round ${round} of ${rounds}, ${n} relay(s) (machine ${background.toFixed(0)} % busy just before)...\n`);
  const name = 'relays_bench';
  const url = await postgres.createDatabase(name);
  const started: Spawned[] = [];
  let fleet: Fleet | undefined;
  let activity: PostgresActivity | undefined;
  const listener = new pg.Client({ connectionString: url, application_name: 'pgrelay-bench-notify' });
  try {
    await prepareDatabase(url, 'pgrelay');
    activity = await PostgresActivity.open(postgres.adminUrl, name);
    // the relays on the server CPU, as many as asked; everything else (load, writer, Postgres) on the other
    const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
    const relays = ports.map((port, k) => spawnRelay({ name: `relay-${k + 1}`, databaseUrl: url, port, secret: SECRET, nofile: socketsPerRelay * 2 + 1000, env: { LOG_LEVEL: 'warn' } }));
    started.push(...relays);
    await Promise.all(relays.map(async (r, k) => {
      for (const deadline = Date.now() + 120_000; (await httpGet(`http://127.0.0.1:${ports[k]}/readyz`).catch(() => ({ status: 0 }))).status !== 200;) {
        if (!r.alive || Date.now() > deadline) throw new Error(`relay ${k + 1} did not get ready:\n${r.output().slice(-2000)}`);
        await sleep(200);
      }
    }));

    // presence members on every relay (the real client library), in the load worker pool's CPU
    if (membersPerRelay > 0) {
      const members = messageWorker('bench/load/presence-clients.ts', { name: 'members', cpu: loadCpu, nofile: membersPerRelay * n * 2 + 1000 });
      started.push(members.process);
      await members.next('ready', 120_000);
      const total = membersPerRelay * n;
      members.send({ type: 'start', urls: ports.map((p) => `ws://127.0.0.1:${p}/ws`), secret: SECRET, sockets: total, tenants, first: 0, count: total });
      await members.next('connected', 120_000);
      members.send({ type: 'join' });
    }

    fleet = new Fleet(workers, { nofile: socketsPerRelay * n * 2 + 4096 });
    const tokens = await tokensFor(SECRET, tenants);
    for (let k = 0; k < n; k++) {
      const c = await fleet.connect('pgrelay', `ws://127.0.0.1:${ports[k]}`, tokens, socketsPerRelay * (k + 1), tenants);
      if (c.failed > 0) throw new Error(`relay ${k + 1}: ${c.failed} sockets did not connect (${c.errors.join('; ')})`);
    }

    // every relay streams: one row, seen by the sockets
    await listener.connect();
    await listener.query('insert into orders (tenant_id, customer, amount, status) values ($1, $2, 0, $3)', ['t0', 'probe', 'probe']);
    for (const deadline = Date.now() + 20_000; (await fleet.progress()).warmup < Math.ceil(socketsPerRelay / tenants) * n;) {
      if (Date.now() > deadline) throw new Error('the probe row did not reach every relay\'s sockets within 20 s');
      await sleep(50);
    }
    let notifies = 0;
    let notifyBytes = 0;
    let presenceNotifies = 0;
    let wakes = 0;
    listener.on('notification', (m) => {
      if (m.channel === 'relay') (notifies++, (notifyBytes += Buffer.byteLength(m.payload ?? '')));
      else if (m.channel === 'relay_presence') presenceNotifies++;
      else if (m.channel === 'relay_wake') wakes++;
    });
    await listener.query('listen relay; listen relay_presence; listen relay_wake');
    await sleep(2000); // presence joins written, the probe's tick long done

    const mark = async () => ({ pg: await activity!.snapshot(), relays: relays.map((r) => cpuSeconds(r.pid)), notifies, notifyBytes, presenceNotifies, wakes });
    const window = (a: Awaited<ReturnType<typeof mark>>, b: Awaited<ReturnType<typeof mark>>): Window => {
      const pgDelta = PostgresActivity.delta(a.pg, b.pg);
      return {
        seconds: pgDelta.seconds, pg: pgDelta, sessions: [...b.pg.backends.values()].filter((x) => x.kind !== 'background').length, relayCpu: b.relays.map((c, k) => c - a.relays[k]!),
        notifies: b.notifies - a.notifies, notifyBytes: b.notifyBytes - a.notifyBytes, presenceNotifies: b.presenceNotifies - a.presenceNotifies, wakes: b.wakes - a.wakes,
      };
    };

    // at rest: sockets connected, members present, nothing written
    const r0 = await mark();
    await sleep(restSeconds * 1000);
    const rest = window(r0, await mark());

    // under load: the window is the middle of the writer's counted seconds, so every session is there at both ends
    await fleet.reset();
    const position = async () => Number((await listener.query<{ p: string }>('select relay.position()::text as p')).rows[0]!.p);
    const writing = runWriter({
      cmd: 'run', databaseUrl: url, tenants: Array.from({ length: tenants }, (_, i) => `t${i}`), rate, duration: seconds, warmup,
      mix: [70, 20, 10], midBase, connections: Math.min(32, Math.max(4, Math.ceil(rate / 250))), seed: 42,
    });
    writing.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
    await sleep((warmup + 1) * 1000);
    const a = await mark();
    const seqA = await position();
    await sleep((seconds - 2) * 1000);
    const b = await mark();
    const seqB = await position();
    const load = window(a, b);
    const w: WriterResult = await writing;
    let expected = 0;
    for (const [tenant, keys] of Object.entries(w.committed)) expected += keys.length * (fleet.perTenant.get(tenant) ?? 0);
    for (let last = -1, still = Date.now(); ;) {
      const p = await fleet.progress();
      if (p.received >= expected) break;
      if (p.received !== last) (last = p.received), (still = Date.now());
      if (Date.now() - still > 3000) break;
      await sleep(20);
    }
    const s = await fleet.collect(w.committed);
    for (const r of relays) if (!r.alive) throw new Error(`${r.name} exited during the run:\n${r.output().slice(-2000)}`);
    return {
      relays: n, round, background, rest,
      load: {
        ...load, transactions: seqB - seqA, expected: s.expected, delivered: s.delivered, lost: s.lost, duplicates: s.duplicates, wrongTenant: s.wrongTenant,
        p50: s.latency.percentile(50) / 1000, p99: s.latency.percentile(99) / 1000, achievedRate: w.transactions / Math.max(w.elapsed, 1e-3), writerErrors: w.errors,
      },
    };
  } finally {
    await listener.end().catch(() => undefined);
    await fleet?.close();
    await activity?.close().catch(() => undefined);
    await Promise.all(started.map((p) => p.stop(5000)));
    await postgres.dropDatabase(name).catch(() => undefined);
  }
}

/** `median (min–max)` of one figure over the runs of one relay count. */
function cell(runs: Run[], value: (r: Run) => number, format: (v: number) => string): string {
  const xs = runs.map(value).filter(Number.isFinite);
  if (xs.length === 0) return 'n/a';
  if (xs.length === 1) return format(xs[0]!);
  return `${format(median(xs))} (${format(Math.min(...xs))}–${format(Math.max(...xs))})`;
}
const pct = (v: number) => `${v.toFixed(1)} %`;
const us = (v: number) => `${v.toFixed(0)} µs`;
const perS = (v: number) => (v >= 100 ? int(v) : v.toFixed(1));

function report(o: Options, runs: Run[], command: string, description: string, commit: string, tickerCommit: string): string {
  const { counts, rate, socketsPerRelay, membersPerRelay, tenants, seconds, warmup, restSeconds, rounds } = o;
  const box = machine();
  const by = counts.map((n) => ({ n, runs: runs.filter((r) => r.relays === n) })).filter((g) => g.runs.length > 0);
  const cpuPct = (w: Window) => (w.pg.total / w.seconds) * 100;
  const base = by.find((g) => g.n === 1) ?? by[0]!;
  const baseRest = median(base.runs.map((r) => cpuPct(r.rest)));
  const baseLoad = median(base.runs.map((r) => cpuPct(r.load)));
  const perRelay = (g: { n: number }, now: number, at1: number) => (g.n === base.n ? NaN : (now - at1) / (g.n - base.n));

  const cpuTable = table(
    ['relays', 'sockets', 'runs', 'sessions on the database (load)', 'Postgres CPU at rest', 'each relay added, at rest', `Postgres CPU at ${rate} tx/s`, 'each relay added, under load', 'Postgres CPU per transaction', 'per transaction and relay added'],
    by.map((g) => {
      const rest = median(g.runs.map((r) => cpuPct(r.rest)));
      const load = median(g.runs.map((r) => cpuPct(r.load)));
      const perTx = (r: Run) => (r.load.pg.total * 1e6) / Math.max(1, r.load.transactions);
      const perTx1 = median(base.runs.map(perTx));
      return [
        g.n, int(g.n * socketsPerRelay), g.runs.length, cell(g.runs, (r) => r.load.sessions, (v) => int(v)),
        cell(g.runs, (r) => cpuPct(r.rest), pct), Number.isFinite(perRelay(g, rest, baseRest)) ? pct(perRelay(g, rest, baseRest)) : '—',
        cell(g.runs, (r) => cpuPct(r.load), pct), Number.isFinite(perRelay(g, load, baseLoad)) ? pct(perRelay(g, load, baseLoad)) : '—',
        cell(g.runs, perTx, us), g.n === base.n ? '—' : us((median(g.runs.map(perTx)) - perTx1) / (g.n - base.n)),
      ];
    }),
  );
  const kindsTable = table(
    ['relays', ...backendKinds.map((k) => backendKindLabel[k])],
    by.map((g) => [g.n, ...backendKinds.map((k) => `${cell(g.runs, (r) => (r.load.pg.byKind[k] / r.load.seconds) * 100, pct)} · ${cell(g.runs, (r) => (r.rest.pg.byKind[k] / r.rest.seconds) * 100, pct)}`)]),
  );
  const callsOf = (w: Window, k: (typeof statementKinds)[number]) => (w.pg.calls ? w.pg.calls[k] / w.seconds : NaN);
  const statementsTable = table(
    ['relays', ...statementKinds.map((k) => `${k} /s`), 'all /s'],
    by.map((g) => [g.n, ...statementKinds.map((k) => `${cell(g.runs, (r) => callsOf(r.load, k), perS)} · ${cell(g.runs, (r) => callsOf(r.rest, k), perS)}`),
      `${cell(g.runs, (r) => statementKinds.reduce((s, k) => s + callsOf(r.load, k), 0), perS)} · ${cell(g.runs, (r) => statementKinds.reduce((s, k) => s + callsOf(r.rest, k), 0), perS)}`]),
  );
  const fanoutTable = table(
    ['relays', 'transactions numbered /s', 'NOTIFY relay /s', 'bytes per NOTIFY', 'NOTIFY relay_wake /s (load · rest)', 'deliveries to LISTEN sessions /s', 'NOTIFY relay_presence /s (load · rest)', 'relay CPU, each (load · rest)', 'deliveries to sockets /s', 'latency p50 / p99', 'lost / duplicated / wrong tenant'],
    by.map((g) => [
      g.n,
      cell(g.runs, (r) => r.load.transactions / r.load.seconds, perS),
      cell(g.runs, (r) => r.load.notifies / r.load.seconds, perS),
      cell(g.runs, (r) => r.load.notifyBytes / Math.max(1, r.load.notifies), (v) => int(v)),
      `${cell(g.runs, (r) => r.load.wakes / r.load.seconds, perS)} · ${cell(g.runs, (r) => r.rest.wakes / r.rest.seconds, perS)}`,
      cell(g.runs, (r) => (r.load.notifies * r.relays) / r.load.seconds, perS),
      `${cell(g.runs, (r) => r.load.presenceNotifies / r.load.seconds, perS)} · ${cell(g.runs, (r) => r.rest.presenceNotifies / r.rest.seconds, perS)}`,
      `${cell(g.runs, (r) => (median(r.load.relayCpu) / r.load.seconds) * 100, pct)} · ${cell(g.runs, (r) => (median(r.rest.relayCpu) / r.rest.seconds) * 100, pct)}`,
      cell(g.runs, (r) => r.load.expected / seconds, (v) => int(v)),
      `${cell(g.runs, (r) => r.load.p50, ms)} / ${cell(g.runs, (r) => r.load.p99, ms)} ms`,
      `${int(g.runs.reduce((s, r) => s + r.load.lost, 0))} / ${int(g.runs.reduce((s, r) => s + r.load.duplicates, 0))} / ${int(g.runs.reduce((s, r) => s + r.load.wrongTenant, 0))} of ${int(g.runs.reduce((s, r) => s + r.load.expected, 0))}`,
    ]),
  );
  const busiest = Math.max(...runs.map((r) => r.background));
  const writerErrors = [...new Set(runs.flatMap((r) => r.load.writerErrors))];
  return [
    '## Relays per database: what the next relay costs',
    '',
    `- Command: \`${command}\`, at ${commit} (db/ticker/ as of ${tickerCommit}); ${new Date().toISOString()}.`,
    `- Machine: ${describeMachine(box)}. Postgres: ${description}.`,
    `- Background: CPUs at most ${busiest.toFixed(0)} % busy with other work just before a run${busiest > 10 ? ' — not idle: figures are noisy' : ''}.`,
    `- Load: N relay processes (\`relay/cli.ts start\`, each its own ticker candidate, LISTEN session and pool) on one database, all on CPU ${serverCpu}; each holds ${socketsPerRelay} subscribed sockets over ${tenants} tenants (load workers) and ${membersPerRelay} presence members (the client library). At rest for ${restSeconds} s, then a writer commits ${rate} single-row transactions/s (70 % inserts, 20 % updates, 10 % deletes) for ${seconds} s after ${warmup} s of warm-up; the load window is its middle ${seconds - 2} s. ${rounds} rounds, relay counts interleaved (ascending, then descending); each cell is the median, with min–max.`,
    '- Postgres CPU is every process of the server (`/proc`), in % of one core; "each relay added" is the difference to 1 relay ÷ the relays added. Per transaction: Postgres CPU ÷ the transactions numbered in the window (relay.position()).',
    '',
    cpuTable,
    '',
    'Where Postgres CPU goes, by session (`application_name`), in % of one core, under load · at rest:',
    '',
    kindsTable,
    '',
    'Statements run on the database, per second (pg_stat_statements: top-level statements, the benchmark\'s own excluded), under load · at rest. "snapshot polls" are the ticker\'s looks for finished transactions, "ticker sleeps" its going to sleep on LISTEN and waking, "lock attempts" the other relays\' tries for the ticker lock (and the hourly pruning lock), "presence" the relays\' joins, leaves, heartbeats, reads and sweeps:',
    '',
    statementsTable,
    '',
    'NOTIFY fan-out and the relays\' side. Each NOTIFY is queued once and read by every LISTEN session of the database (one per relay):',
    '',
    fanoutTable,
    ...(writerErrors.length ? ['', `- Writer errors: ${writerErrors.join('; ')}.`] : []),
  ].join('\n');
}

async function run(flags: Flags, command: string): Promise<void> {
  const o = options(flags);
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, { encoding: 'utf8' }).trim();
    } catch {
      return 'an unknown commit';
    }
  };
  const commit = git('rev-parse', '--short', 'HEAD');
  const tickerCommit = git('log', '-1', '--format=%h', '--', 'db/ticker/');
  // its own Postgres, with pg_stat_statements preloaded (a given one needs it preloaded for the statement counts)
  const postgres = await startPostgres(flags.str('database-url') ?? process.env.TEST_DATABASE_URL, { settings: { shared_preload_libraries: 'pg_stat_statements' } });
  const runs: Run[] = [];
  let midBase = 1;
  for (let round = 1; round <= o.rounds; round++) {
    for (const n of round % 2 ? o.counts : [...o.counts].reverse()) {
      runs.push(await runOnce(o, postgres, n, round, midBase));
      midBase += 10_000_000;
      const last = runs.at(-1)!;
      process.stderr.write(`relays: ${n}: Postgres ${((last.load.pg.total / last.load.seconds) * 100).toFixed(1)} % of a core under load, ${((last.rest.pg.total / last.rest.seconds) * 100).toFixed(1)} % at rest; lost ${last.load.lost}\n`);
    }
  }
  const md = report(o, runs, command, postgres.description, commit, tickerCommit);
  process.stdout.write(`\n${md}\n`);
  if (flags.bool('record')) await writeSection('relayCount', md);
}

/**
 * What the next relay costs the database (issue 25, `npm run bench:relays`): 1, 2, 4 and 8 relay processes on one
 * Postgres, each holding the same number of subscribed sockets and presence members, first at rest, then while a writer
 * commits R transactions/s. Per run: Postgres CPU (the whole server, and by kind of session: the ticker, its candidates,
 * the LISTEN sessions, the relays' pools, the writer), the statements relays send (pg_stat_statements: ticks, the
 * ticker's snapshot polls, the candidates' lock attempts, presence, log reads), NOTIFYs sent and their deliveries to the
 * relays' LISTEN sessions, each relay's CPU, and every delivery to the sockets accounted (lost, duplicated) with its
 * latency. The relay counts are interleaved round by round (ascending, then descending), and each figure is the median
 * of the rounds with min–max.
 */
export const relays: Benchmark = {
  name: 'relays',
  title: 'What the next relay costs the database: 1, 2, 4, 8 relays on one Postgres, at rest and under load (own Postgres, pg_stat_statements)',
  usage: `--relays 1,2,4,8 --rate 200 --sockets 250 --members 20 --tenants 50 --seconds 20 --warmup 3 --rest 10 --rounds 2 --workers 2
--record (writes its section; without it the tables are printed only)`,
  run: (flags, ctx) => run(flags, ctx.command),
};
