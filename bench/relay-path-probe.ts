// Where a change's time goes once Postgres has sequenced it: a probe, not a side-by-side benchmark.
// 1. The relay in this process on a throwaway Postgres, one `ws` subscriber, one-row inserts at a steady pace: the
//    sequencer's `at` → the relay's LISTEN session receives the NOTIFY → the subscriber's `message` event.
// 2. uWS alone: `app.publish` to subscribers from a net-socket `data` callback (as the relay publishes from pg's),
//    against `cork` + `send` on each socket, to see whether publishing outside a uWS handler defers the write.
//
//   node --import tsx bench/relay-path-probe.ts [--inserts 1000] [--subscribers 20] [--messages 2000]
import net from 'node:net';
import { parseArgs } from 'node:util';
import pg from 'pg';
import WebSocket from 'ws';
import { SignJWT } from 'jose';
import { migrate } from '../db/migrate.js';
import { loadConfig } from '../relay/ops/config.js';
import { pgListenSession } from '../relay/feed/listen-session.js';
import { createLogger } from '../relay/ops/log.js';
import { startRelay } from '../relay/relay.js';
import { loadUws } from '../relay/server/uws-native.js';
import { machine, median, onCleanup, runMain, startServer, writeResultsSection } from './capture-overhead/server.js';
import { receiptTime, rowTime } from './load/timestamps.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))] ?? NaN;
const ms = (xs: number[]) => `${median(xs).toFixed(2)} / ${percentile(xs, 0.9).toFixed(2)} / ${percentile(xs, 0.99).toFixed(2)}`;

async function relayPath(inserts: number): Promise<{ version: string; rows: string[]; gapReads: string }> {
  const server = await startServer('embedded', { fsync: 'off', synchronous_commit: 'off' });
  const url = server.url('postgres');
  await migrate(url);
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  onCleanup(() => db.end().catch(() => undefined));
  await db.query(`create table orders (id bigserial primary key, tenant_id text not null, ts timestamptz not null default clock_timestamp())`);
  await db.query(`select relay.watch('orders', 'tenant_id')`);

  // the relay's own LISTEN session, with the moment each notification arrives noted by seq
  const received = new Map<number, number>();
  const inner = pgListenSession(url, ['relay', 'relay_config']);
  const session = {
    ...inner,
    onNotification(cb: (channel: string, payload: string) => void) {
      inner.onNotification((channel, payload) => {
        const seq = /"seq":(\d+)/.exec(payload)?.[1];
        if (seq) received.set(Number(seq), receiptTime());
        cb(channel, payload);
      });
    },
  };
  const secret = 'probe-secret-'.padEnd(40, 'x');
  const relay = await startRelay({ session, log: createLogger('warn'), config: { ...loadConfig({ DATABASE_URL: url, RELAY_JWT_SECRET: secret, PORT: '0', HOST: '127.0.0.1' }), databaseUrl: url } });
  onCleanup(() => relay.close());
  const token = await new SignJWT({ tenant_id: 't1' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(secret));
  const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/ws`, ['pgrelay.v1', `bearer.${token}`]);
  onCleanup(() => ws.terminate());
  const fromTs: number[] = [], fromAt: number[] = [], toRelay: number[] = [], inRelay: number[] = [];
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.on('message', (data) => {
      const now = receiptTime();
      const m = JSON.parse(String(data)) as { type: string; seq: number; at: string; changes: Array<{ row: { ts: string } }> };
      if (m.type === 'welcome') ws.send(JSON.stringify({ type: 'subscribe', id: 'o', table: 'public.orders' }));
      else if (m.type === 'subscribed') resolve();
      else if (m.type === 'tx') {
        const at = rowTime(m.at);
        const got = received.get(m.seq)!;
        fromTs.push(now - rowTime(m.changes[0]!.row.ts));
        fromAt.push(now - at);
        toRelay.push(got - at);
        inRelay.push(now - got);
      }
    });
  });
  for (let i = 0; i < inserts; i++) {
    await db.query(`insert into orders (tenant_id) values ('t1')`);
    await sleep(5);
  }
  for (let waited = 0; fromTs.length < inserts && waited < 5000; waited += 50) await sleep(50);
  const metrics = await (await fetch(`http://127.0.0.1:${relay.port}/metrics`)).text();
  const gapReads = metrics.split('\n').filter((l) => l.startsWith('pgrelay_gap_reads_total')).join(', ') || 'none';
  return {
    version: server.version,
    gapReads,
    rows: [
      `| row written (\`ts\`) → subscriber | ${fromTs.length} | ${ms(fromTs)} |`,
      `| sequencer (\`at\`) → subscriber | ${fromAt.length} | ${ms(fromAt)} |`,
      `| sequencer (\`at\`) → the relay's LISTEN session receives the NOTIFY | ${toRelay.length} | ${ms(toRelay)} |`,
      `| the relay receives → subscriber's \`message\` event | ${inRelay.length} | ${ms(inRelay)} |`,
    ],
  };
}

/** One uWS app, `subscribers` ws clients; a net socket's `data` events trigger each message. */
async function uwsPublish(mode: 'publish' | 'send', subscribers: number, messages: number): Promise<number[]> {
  const { uws } = loadUws();
  const sockets = new Set<import('uWebSockets.js').WebSocket<unknown>>();
  const app = uws.App().ws('/*', { open: (s) => {
    s.subscribe('t');
    sockets.add(s);
  }, close: (s) => {
    sockets.delete(s);
  } });
  const listenSocket = await new Promise<unknown>((resolve) => app.listen('127.0.0.1', 0, resolve));
  const port = uws.us_socket_local_port(listenSocket as never);
  const latencies: number[] = [];
  const clients = await Promise.all(Array.from({ length: subscribers }, () => new Promise<WebSocket>((resolve) => {
    const c = new WebSocket(`ws://127.0.0.1:${port}`);
    c.on('open', () => resolve(c));
    c.on('message', (d) => latencies.push(receiptTime() - Number(String(d))));
  })));
  const trigger = net.createServer((s) => s.on('data', () => {
    const msg = String(receiptTime());
    if (mode === 'publish') app.publish('t', msg);
    else for (const s2 of sockets) s2.cork(() => s2.send(msg));
  }));
  await new Promise<void>((resolve) => trigger.listen(0, '127.0.0.1', resolve));
  const feeder = net.connect((trigger.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => feeder.once('connect', r));
  for (let i = 0; i < messages; i++) {
    feeder.write('x');
    await sleep(3);
  }
  for (let waited = 0; latencies.length < messages * subscribers && waited < 3000; waited += 20) await sleep(20);
  feeder.destroy();
  trigger.close();
  for (const c of clients) c.terminate();
  uws.us_listen_socket_close(listenSocket as never);
  return latencies;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { inserts: { type: 'string', default: '1000' }, subscribers: { type: 'string', default: '20' }, messages: { type: 'string', default: '2000' } } });
  const command = `node --import tsx bench/relay-path-probe.ts${process.argv.length > 2 ? ' ' + process.argv.slice(2).join(' ') : ''}`;
  const inserts = Number(values.inserts);
  const subscribers = Number(values.subscribers);
  const messages = Number(values.messages);
  const path = await relayPath(inserts);
  const uwsRows: string[] = [];
  for (const round of [1, 2]) {
    for (const mode of ['publish', 'send'] as const) {
      const l = await uwsPublish(mode, subscribers, messages);
      uwsRows.push(`| ${mode === 'publish' ? '`app.publish`' : '`cork` + `send` per socket'} | ${round} | ${l.length} | ${ms(l)} |`);
    }
  }
  const body = [
    `Command: \`${command}\``,
    `Date: ${new Date().toISOString()}; machine: ${machine()}; server: ${path.version} (embedded, fsync off). Everything in one Node process, so the subscriber shares the relay's event loop: a probe of where time goes, not a latency figure to set against the side-by-side runs.`,
    '',
    `The relay in-process, one \`ws\` subscriber, ${inserts} one-row inserts 5 ms apart (ms: median / p90 / p99; \`at\` and \`ts\` read with their µs). Log reads for gaps or references: ${path.gapReads}.`,
    '',
    '| stretch | count | ms |',
    '| --- | ---: | ---: |',
    ...path.rows,
    '',
    `uWS alone, ${subscribers} subscribers, ${messages} messages 3 ms apart, each sent from a net-socket \`data\` callback (ms, send → \`message\` event):`,
    '',
    '| how | round | receipts | ms |',
    '| --- | ---: | ---: | ---: |',
    ...uwsRows,
  ].join('\n');
  console.log(body);
  console.log(`\nwritten to ${await writeResultsSection("Latency: the relay's own path (probe)", body)}`);
}

runMain(main);
