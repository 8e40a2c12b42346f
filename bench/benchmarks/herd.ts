// bench:herd: clients back after a relay restart (welcomed, resubscribed, caught up), and the herd of upgrades the new relay takes.
import os from 'node:os';
import pg from 'pg';
import { freePort } from '../../client/shared/free-port.js';
import { sleep } from '../../db/testing/wait.js';
import type { Flags } from '../lib/args.js';
import type { Benchmark } from '../lib/benchmark.js';
import { int, ms, table } from '../lib/format.js';
import { describeMachine, machine } from '../lib/machine.js';
import { percentile } from '../lib/median.js';
import { messageWorker } from '../lib/message-worker.js';
import type { BenchPostgres } from '../lib/postgres.js';
import { cpuSeconds, loadCpu, type Spawned } from '../lib/processes.js';
import { writeSection } from '../lib/results.js';
import { tokensFor } from '../lib/session.js';
import { prepareDatabase, spawnRelay } from '../lib/targets.js';

const SECRET = 'reconnect-herd-secret-reconnect-herd-secret';

async function run(flags: Flags, postgres: BenchPostgres): Promise<void> {
  const clients = flags.num('clients', 5000);
  const tenants = flags.num('tenants', 100);
  const outageMs = flags.num('outage-ms', 7000);
  const write = !flags.bool('no-write');
  const workers = flags.num('workers', 4);
  /** Let the load workers use every CPU (the relay's too) instead of the load CPU alone. */
  const spread = flags.bool('spread-load');
  // the client's transport option: auto (the default; a WebSocket that cannot open is followed by HTTP checks) or websocket
  const transport = flags.str('transport', 'auto');
  if (!['auto', 'websocket'].includes(transport)) throw new Error('--transport must be auto or websocket');
  const box = machine();
  const url = await postgres.createDatabase('reconnect_herd');
  await prepareDatabase(url, 'pgrelay');
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const port = await freePort();
  const startRelay = (name: string): Spawned => spawnRelay({ name, databaseUrl: url, port, secret: SECRET, nofile: clients * 2 + 1000 });

  let relay = startRelay('relay-1');
  await relay.waitFor(/pgrelay listening on/, 60_000);
  const tokens = Object.values(await tokensFor(SECRET, tenants));

  // The clients live in worker processes (the real client library over `ws`), pinned to the load CPU.
  const workerCount = Math.max(1, Math.min(workers, clients));
  const pool = Array.from({ length: workerCount }, (_, k) =>
    messageWorker('bench/load/herd-clients.ts', { name: `clients-${k}`, ...(spread ? {} : { cpu: loadCpu }), nofile: Math.ceil(clients / workerCount) * 2 + 1000 }));
  await Promise.all(pool.map((p) => p.next('ready', 60_000)));
  const share = Math.ceil(clients / workerCount);
  pool.forEach((p, k) => p.send({ type: 'start', url: `ws://127.0.0.1:${port}/ws`, tokens, transport, first: k * share, count: Math.max(0, Math.min(share, clients - k * share)) }));
  await Promise.all(pool.map((p) => p.next('subscribed', 180_000)));
  console.error(`${clients} clients subscribed in ${workerCount} workers; killing the relay`);

  relay.child.kill('SIGKILL');
  await relay.exited;
  const killedAt = Date.now();
  const marker = write ? 424242 : -1;
  for (const p of pool) p.send({ type: 'reset', marker });
  if (write) {
    // one row per tenant, committed while no relay runs: each client must receive its tenant's row after it resumes
    await db.query(`insert into orders (tenant_id, customer, amount, status, mid) select 't' || g, 'herd', 0, 'outage', ${marker} from generate_series(0, ${tenants - 1}) g`);
  }
  await sleep(Math.max(0, outageMs - (Date.now() - killedAt)));
  relay = startRelay('relay-2');
  const cpuBefore = cpuSeconds(relay.pid);
  await relay.waitFor(/pgrelay listening on/, 60_000);
  const readyAt = performance.timeOrigin + performance.now();
  const cpuAtReady = cpuSeconds(relay.pid);
  // wait until every client is back (or a minute), asking the workers every half second
  let reports: Array<{ welcomed: number[]; subscribed: number[]; caughtUp: number[]; attempted: number[]; loopP99: number; cpu: number }> = [];
  const giveUpAt = Date.now() + 60_000;
  for (;;) {
    await sleep(500);
    for (const p of pool) p.send({ type: 'report' });
    reports = (await Promise.all(pool.map((p) => p.next('report', 30_000)))) as unknown as typeof reports;
    const done = reports.every((r) => r.subscribed.every((t) => t > 0) && (!write || r.caughtUp.every((t) => t > 0)));
    if (done || Date.now() > giveUpAt) break;
  }
  const cpuAfter = cpuSeconds(relay.pid);
  const load = os.loadavg()[0]!;
  for (const p of pool) p.send({ type: 'stop' });
  const back = (key: 'welcomed' | 'subscribed' | 'caughtUp') => reports.flatMap((r) => r[key]).filter((t) => t > 0).map((t) => t - readyAt).sort((x, y) => x - y);
  const w = back('welcomed');
  const s = back('subscribed');
  const c = back('caughtUp');
  const early = s.filter((t) => t < 0).length;
  // the relay's side alone: from the start of the attempt that succeeded to the subscribed frame
  const served = reports.flatMap((r) => r.subscribed.map((t, i) => t - r.attempted[i]!)).filter((d) => d >= 0).sort((x, y) => x - y);
  // the herd: upgrades welcomed per 100 ms after ready
  const buckets = new Map<number, number>();
  for (const t of w) buckets.set(Math.floor(t / 100), (buckets.get(Math.floor(t / 100)) ?? 0) + 1);
  const peak = Math.max(...buckets.values());
  const loopP99 = Math.max(...reports.map((r) => r.loopP99));
  const loadCpuShare = reports.reduce((sum, r) => sum + r.cpu, 0);
  await db.end();

  const row = (name: string, a: number[]) => [name, `${int(a.length)} / ${int(clients)}`, ms(percentile(a, 50)), ms(percentile(a, 99)), ms(a[a.length - 1]!)];
  const report = [
    table(['from relay ready to (ms)', 'clients', 'p50', 'p99', 'max'], [row('welcome', w), row('resubscribed (subscribed frame)', s), ...(write ? [row("the outage's transaction received", c)] : []),
      row('(from the start of the successful attempt to subscribed)', served)]),
    '',
    `Herd: at most ${int(peak)} upgrades in one 100 ms window (${int(peak * 10)}/s); relay CPU ${(cpuAfter - cpuAtReady).toFixed(2)} s from ready until every client was back (start-up before ready: ${(cpuAtReady - cpuBefore).toFixed(2)} s).` +
      ` Load side (${workerCount} worker processes${spread ? ', free to use every CPU' : ' on one CPU'}): ${Math.round(loadCpuShare * 100)} % of a core from the kill to the end, worst event-loop delay p99 of a worker ${ms(loopP99)} ms; machine load average ${load.toFixed(1)} (1 min) on ${box.nproc} cores.` +
      (early ? ` ${early} clients were welcomed before the "listening" line reached the coordinator (counted as 0 ms).` : ''),
  ].join('\n');
  console.log(report);
  const goal = percentile(s, 100) <= 2000;
  await writeSection('reconnectHerd', [
    '## Reconnect after a relay restart',
    '',
    `\`npm run bench:herd -- --clients ${clients} --tenants ${tenants} --outage-ms ${outageMs} --workers ${workers}${spread ? ' --spread-load' : ''} --transport ${transport}${write ? '' : ' --no-write'}\`, ${new Date().toISOString().slice(0, 10)}. ` +
      `${int(clients)} clients of the client library (default backoff: 500 ms min, 30 s max) over \`ws\` in ${workers} worker processes ${spread ? 'free to use both CPUs (the relay is pinned to one)' : 'pinned to one CPU (the relay has the other)'}, ${tenants} tenants, each following \`public.orders\`; ` +
      `the relay is killed with SIGKILL, ${write ? `one row per tenant is committed, ` : ''}and a new relay starts on the same port ${ms(outageMs)} ms after the kill. ` +
      `Times from the new relay's "listening" line (it listens once caught up with the log). Clients share their CPU with Postgres; this machine's 2 cores are also shared with other work, so times include the load side's own delays.`,
    '',
    `Machine: ${describeMachine(box)}. Postgres: ${postgres.description}.`,
    '',
    report,
    '',
    `Goal: every client resubscribed within 2 s of the relay being ready: **${goal ? 'pass' : 'fail'}** (max ${ms(s[s.length - 1]!)} ms).`,
  ].join('\n'));
}

/**
 * Reconnect after a relay restart (`npm run bench:herd`): N clients (the real client library over `ws`) follow a table;
 * the relay is killed with SIGKILL, a transaction commits during the outage, a new relay starts on the same port.
 * Measures, from the moment the new relay is ready (its "listening" line: it listens only once caught up), when each
 * client is welcomed, resubscribed and has the outage's transaction, and how many upgrades per 100 ms the relay took (the herd).
 */
export const herd: Benchmark = {
  name: 'herd',
  title: 'Reconnect after a relay restart: N clients back, resubscribed and caught up; the herd of upgrades the new relay takes',
  usage: `--clients 5000 --tenants 100 --outage-ms 7000 --workers 4 --spread-load (load workers on any CPU)
--transport auto|websocket (the client's option) --no-write (no transaction during the outage)`,
  run: async (flags, ctx) => run(flags, await ctx.postgres()),
};
