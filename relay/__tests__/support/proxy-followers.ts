// A child process of proxy.nginx.test.ts: clients of the client library following `orders` through the proxy, over TLS.
// A process of its own so that NODE_EXTRA_CA_CERTS (the test's self-signed certificate) reaches fetch, which SSE uses.
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { createRelayClient, type RelayClient, type Subscription } from '../../../client/index.js';
// the kit's wait.ts itself: this runs in a child process of its own, outside vitest
import { until } from '../../../db/testing/wait.js';

/** The test → this process. */
export type FollowerCommand =
  | { type: 'start'; url: string; secret: string; tenants: string[]; perTransport: number }
  | { type: 'report' }
  | { type: 'stop' };

/** What one client applied, in order. */
export interface FollowerReport {
  transport: 'websocket' | 'sse';
  tenant: string;
  /** The subscription's cursor when it started: every later transaction of its tenant is expected. */
  start: number;
  /** Each transaction applied: its seq and how many changes it carried. */
  applied: Array<[seq: number, changes: number]>;
  /** Every status the client went through (`reconnecting` after the relay under it was killed). */
  statuses: string[];
  /** The client's errors (`onError`), for the test's message when something is wrong. */
  errors: string[];
}

/** This process → the test. */
export type FollowerReply =
  | { type: 'ready' }
  | { type: 'report'; clients: FollowerReport[] }
  | { type: 'error'; message: string };

interface Follower { client: RelayClient; sub: Subscription; report: FollowerReport }
const followers: Follower[] = [];
const reply = (m: FollowerReply) => process.send!(m);

async function start(cmd: Extract<FollowerCommand, { type: 'start' }>): Promise<void> {
  const key = new TextEncoder().encode(cmd.secret);
  for (const transport of ['websocket', 'sse'] as const) {
    for (let i = 0; i < cmd.perTransport; i++) {
      const tenant = cmd.tenants[i % cmd.tenants.length]!;
      const report: FollowerReport = { transport, tenant, start: -1, applied: [], statuses: [], errors: [] };
      const client = createRelayClient({
        url: cmd.url,
        transport,
        WebSocket: WebSocket as never,
        backoff: { minMs: 100, maxMs: 1000 },
        onError: (err) => void report.errors.push(`${err.code}: ${err.message}`),
        token: () => new SignJWT({ tenant_id: tenant }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(key),
      });
      client.onStatus(({ to }) => void report.statuses.push(to));
      const sub = client.subscribe('orders', {}, { onTransaction: (tx) => void report.applied.push([tx.seq, tx.changes.length]) });
      followers.push({ client, sub, report });
    }
  }
  // every subscription has its cursor: what commits from now on is what each must apply
  const waiting = () => followers.filter((f) => f.sub.cursor === undefined);
  await until(() => waiting().length === 0, {
    what: () => `a cursor for every subscription (${waiting().length} had none: ${waiting().map((f) => `${f.report.transport} (${f.report.statuses.join(' → ')}; ${f.report.errors.slice(-2).join(', ') || 'no error'})`).join('; ')})`,
    timeoutMs: 30_000,
  });
  for (const f of followers) f.report.start = f.sub.cursor!;
}

process.on('message', (raw) => {
  const cmd = raw as FollowerCommand;
  if (cmd.type === 'start') start(cmd).then(() => reply({ type: 'ready' }), (err: unknown) => reply({ type: 'error', message: String(err) }));
  if (cmd.type === 'report') reply({ type: 'report', clients: followers.map((f) => f.report) });
  if (cmd.type === 'stop') {
    for (const f of followers) f.client.close();
    setTimeout(() => process.exit(0), 200);
  }
});
process.on('disconnect', () => process.exit(0));
