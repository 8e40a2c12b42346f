// Reconnect after a relay restart: N clients (the real client library over `ws`) follow a table; the relay is killed with SIGKILL,
// a transaction commits during the outage, a new relay starts on the same port. Measures, from the moment the new relay is ready
// (its "listening" line: it listens only once caught up), when each client is welcomed, resubscribed and has the outage's
// transaction, and how many upgrades per 100 ms the relay took (the herd).
//
//   node --import tsx bench/reconnect-herd.ts [--clients 5000] [--tenants 100] [--outage-ms 7000] [--database-url URL] [--no-write]
import { SignJWT } from 'jose';
import pg from 'pg';
import { WebSocket } from 'ws';
import { createRelayClient, type RelayClient } from '../client/index.js';
import { migrate } from '../db/migrate.js';
import { freePort } from '../db/embedded-server.js';
import { Flags } from './lib/args.js';
import { int, ms, table } from './lib/format.js';
import { describeMachine, machine } from './lib/machine.js';
import { startPostgres } from './lib/postgres.js';
import { cleanup, cpuSeconds, installExitHandlers, serverCpu, spawnNode, type Spawned } from './lib/processes.js';
import { writeSection } from './lib/results.js';

const flags = new Flags(process.argv.slice(2));
const clients = flags.num('clients', 5000);
const tenants = flags.num('tenants', 100);
const outageMs = flags.num('outage-ms', 7000);
const write = !flags.bool('no-write');
const SECRET = 'reconnect-herd-secret-reconnect-herd-secret';
const sleep = (n: number) => new Promise((r) => setTimeout(r, n));

installExitHandlers();
const box = machine();

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const postgres = await startPostgres(flags.str('database-url') ?? process.env.TEST_DATABASE_URL);
  const url = await postgres.createDatabase('reconnect_herd');
  await migrate(url);
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  await db.query(`create table orders (id bigserial primary key, tenant_id text not null, total numeric not null); select relay.watch('orders', 'tenant_id')`);
  const port = await freePort();
  const startRelay = (name: string): Spawned =>
    spawnNode('relay/cli.ts', {
      name, args: ['start'], cpu: serverCpu, nofile: clients * 2 + 1000,
      env: { DATABASE_URL: url, PORT: String(port), HOST: '127.0.0.1', RELAY_JWT_SECRET: SECRET, LOG_LEVEL: 'info', LOG_FORMAT: 'json' },
    });

  let relay = startRelay('relay-1');
  await relay.waitFor(/pgrelay listening on/, 60_000);
  const tokens = await Promise.all(Array.from({ length: tenants }, (_, t) => new SignJWT({ tenant_id: `t${t}` }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('2h').sign(new TextEncoder().encode(SECRET))));

  // Per client: when the current connection was welcomed and subscribed, and when the outage's transaction arrived.
  const welcomed = new Array<number>(clients).fill(0);
  const subscribed = new Array<number>(clients).fill(0);
  const caughtUp = new Array<number>(clients).fill(0);
  let marker = -1;
  const list: RelayClient[] = [];
  for (let i = 0; i < clients; i++) {
    // A `ws` subclass per client that notes the frames the client library consumes, without changing them.
    const Probe = class extends WebSocket {
      constructor(u: string, p: string[]) {
        super(u, p);
        this.on('message', (d) => {
          const s = d.toString();
          if (s.startsWith('{"type":"welcome"')) welcomed[i] = performance.now();
          else if (s.startsWith('{"type":"subscribed"')) subscribed[i] = performance.now();
        });
      }
    };
    const c = createRelayClient({ url: `ws://127.0.0.1:${port}/ws`, token: tokens[i % tenants]!, WebSocket: Probe as never });
    c.subscribe('orders', {}, {
      onChange: (change) => {
        if (Number((change.row as { total: string }).total) === marker && !caughtUp[i]) caughtUp[i] = performance.now();
      },
    });
    list.push(c);
    if (i % 250 === 249) await sleep(50); // a gentle ramp: the first connect is not what is measured
  }
  const deadline = Date.now() + 120_000;
  while (subscribed.some((t) => t === 0)) {
    if (Date.now() > deadline) throw new Error(`only ${subscribed.filter(Boolean).length} of ${clients} clients subscribed within 120 s`);
    await sleep(100);
  }
  console.error(`${clients} clients subscribed; killing the relay`);

  relay.child.kill('SIGKILL');
  await relay.exited;
  const killedAt = performance.now();
  welcomed.fill(0);
  subscribed.fill(0);
  if (write) {
    marker = 424242;
    // one row per tenant, committed while no relay runs: each client must receive its tenant's row after it resumes
    await db.query(`insert into orders (tenant_id, total) select 't' || g, ${marker} from generate_series(0, ${tenants - 1}) g`);
  }
  await sleep(Math.max(0, outageMs - (performance.now() - killedAt)));
  relay = startRelay('relay-2');
  const cpuBefore = cpuSeconds(relay.pid);
  await relay.waitFor(/pgrelay listening on/, 60_000);
  const readyAt = performance.now();
  const cpuAtReady = cpuSeconds(relay.pid);
  const until = Date.now() + 60_000;
  while (subscribed.some((t) => t === 0) || (write && caughtUp.some((t) => t === 0))) {
    if (Date.now() > until) break;
    await sleep(20);
  }
  const cpuAfter = cpuSeconds(relay.pid);
  const back = (a: number[]) => a.filter((t) => t > 0).map((t) => t - readyAt).sort((x, y) => x - y);
  const w = back(welcomed);
  const s = back(subscribed);
  const c = back(caughtUp);
  const early = s.filter((t) => t < 0).length;
  // the herd: upgrades welcomed per 100 ms after ready
  const buckets = new Map<number, number>();
  for (const t of w) buckets.set(Math.floor(t / 100), (buckets.get(Math.floor(t / 100)) ?? 0) + 1);
  const peak = Math.max(...buckets.values());
  for (const x of list) x.close();
  await db.end();

  const row = (name: string, a: number[]) => [name, `${int(a.length)} / ${int(clients)}`, ms(percentile(a, 50)), ms(percentile(a, 99)), ms(a[a.length - 1]!)];
  const report = [
    table(['from relay ready to', 'clients', 'p50', 'p99', 'max'], [row('welcome', w), row('resubscribed (subscribed frame)', s), ...(write ? [row("the outage's transaction received", c)] : [])]),
    '',
    `Herd: at most ${int(peak)} upgrades in one 100 ms window (${int(peak * 10)}/s); relay CPU ${(cpuAfter - cpuAtReady).toFixed(2)} s from ready until every client was back (start-up before ready: ${(cpuAtReady - cpuBefore).toFixed(2)} s).` +
      (early ? ` ${early} clients were welcomed before the "listening" line reached the coordinator (counted as 0 ms).` : ''),
  ].join('\n');
  console.log(report);
  const goal = percentile(s, 100) <= 2000;
  await writeSection('reconnectHerd', [
    '## Reconnect after a relay restart',
    '',
    `\`node --import tsx bench/reconnect-herd.ts --clients ${clients} --tenants ${tenants} --outage-ms ${outageMs}\`, ${new Date().toISOString().slice(0, 10)}. ` +
      `${int(clients)} clients of the client library (default backoff: 500 ms min, 30 s max) over \`ws\`, ${tenants} tenants, each following \`public.orders\`; ` +
      `the relay is killed with SIGKILL, ${write ? `one row per tenant is committed, ` : ''}and a new relay starts on the same port after ${ms(outageMs)}. ` +
      `Times from the new relay's "listening" line (it listens once caught up with the log). Clients and coordinator share CPU with Postgres.`,
    '',
    `Machine: ${describeMachine(box)}. Postgres: ${postgres.description}.`,
    '',
    report,
    '',
    `Goal: every client resubscribed within 2 s of the relay being ready: **${goal ? 'pass' : 'fail'}** (max ${ms(s[s.length - 1]!)}).`,
  ].join('\n'));
}

main()
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exitCode = 1;
  })
  .finally(() => cleanup().then(() => process.exit()));
