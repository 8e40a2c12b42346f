// The benchmark baselines (A: Socket.IO, B: ws) against a real database, with their real clients: each client gets exactly its tenant's changes.
import { SignJWT } from 'jose';
import { io as socketIo, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { freePort } from '../../client/shared/free-port.js';
import { leakGuard, sleep, until, useTestDatabase } from '../../db/testing/index.js';
import { spawnNode, type Spawned } from '../lib/processes.js';
import { prepareDatabase } from '../lib/targets.js';

const db = useTestDatabase();
leakGuard(() => db.name);

const secret = 'a-test-secret-that-is-long-enough-for-hs256';
const token = (tenant: string) => new SignJWT({ tenant_id: tenant }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(new TextEncoder().encode(secret));

beforeAll(async () => {
  await prepareDatabase(db.url, 'ws');
});

const started: Spawned[] = [];
afterAll(async () => {
  for (const p of started) await p.stop();
});

async function startBaseline(script: string): Promise<{ port: number; server: Spawned }> {
  const port = await freePort();
  const server = spawnNode(script, { name: script, env: { DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', JWT_SECRET: secret } });
  started.push(server);
  await server.waitFor(/listening on/, 20_000);
  return { port, server };
}

/** One received change: what the client saw, reduced to what the test checks. */
type Seen = string;
const seen = (op: string, row: { id: number; tenant_id: string }): Seen => `${op} ${row.tenant_id} ${row.id}`;

interface TestClient {
  tenant: string;
  got: Seen[];
  close(): Promise<void>;
}

const clients = {
  async socketio(port: number, tenant: string): Promise<TestClient> {
    const got: Seen[] = [];
    const s: Socket = socketIo(`http://127.0.0.1:${port}`, { transports: ['websocket'], auth: { token: await token(tenant) }, reconnection: false });
    for (const [event, op] of [['order:created', 'insert'], ['order:updated', 'update'], ['order:deleted', 'delete']] as const) s.on(event, (row: { id: number; tenant_id: string }) => got.push(seen(op, row)));
    await new Promise<void>((resolve, reject) => (s.once('connect', resolve), s.once('connect_error', reject)));
    return { tenant, got, close: async () => void s.disconnect() };
  },
  async ws(port: number, tenant: string): Promise<TestClient> {
    const got: Seen[] = [];
    const ops: Record<string, string> = { 'order:created': 'insert', 'order:updated': 'update', 'order:deleted': 'delete' };
    const w = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${await token(tenant)}`);
    w.on('message', (d) => {
      const m = JSON.parse(String(d)) as { type: string; row: { id: number; tenant_id: string } };
      got.push(seen(ops[m.type] ?? m.type, m.row));
    });
    await new Promise<void>((resolve, reject) => (w.once('open', resolve), w.once('error', reject)));
    return { tenant, got, close: () => new Promise<void>((resolve) => (w.once('close', () => resolve()), w.close())) };
  },
};

/** A token that does not verify gets no connection. */
const refused = {
  socketio: (port: number) =>
    new Promise<string>((resolve) => {
      const s = socketIo(`http://127.0.0.1:${port}`, { transports: ['websocket'], auth: { token: 'not-a-jwt' }, reconnection: false });
      s.once('connect', () => (s.disconnect(), resolve('connected')));
      s.once('connect_error', (e) => (s.disconnect(), resolve(e.message)));
    }),
  ws: (port: number) =>
    new Promise<string>((resolve) => {
      const w = new WebSocket(`ws://127.0.0.1:${port}/ws?token=not-a-jwt`);
      w.once('open', () => (w.close(), resolve('connected')));
      w.once('unexpected-response', (_req, res) => (w.terminate(), resolve(`HTTP ${res.statusCode}`)));
      w.once('error', () => undefined);
    }),
};

describe.each([
  ['socketio', 'bench/baselines/socketio-server.ts', 'unauthorized'],
  ['ws', 'bench/baselines/ws-server.ts', 'HTTP 401'],
] as const)('baseline %s', (kind, script, refusal) => {
  it("delivers each tenant's committed changes, exactly once, to each of its clients only", async () => {
    const { port, server } = await startBaseline(script);
    const all = [await clients[kind](port, 'a'), await clients[kind](port, 'a'), await clients[kind](port, 'b')];
    try {
      expect(await refused[kind](port)).toBe(refusal);
      const ids = await db.query<{ id: string; tenant_id: string }>(
        `insert into orders (tenant_id, customer, amount, status) values ('a', 'x', 1, 'new'), ('b', 'y', 2, 'new'), ('a', 'z', 3, 'new') returning id, tenant_id`,
      );
      const [a1, b1, a2] = ids.rows.map((r) => Number(r.id));
      await db.query(`update orders set status = 'paid' where id = $1`, [a1]);
      await db.query(`delete from orders where id = $1`, [b1]);
      const want: Record<string, Seen[]> = {
        a: [`insert a ${a1}`, `insert a ${a2}`, `update a ${a1}`],
        b: [`insert b ${b1}`, `delete b ${b1}`],
      };
      const done = () => all.every((c) => c.got.length >= want[c.tenant]!.length);
      // the comparison below is the failure message: a wait that runs out goes on to it
      await until(done, { what: 'every change', timeoutMs: 5000, intervalMs: 50 }).catch(() => undefined);
      // A moment more, so that a duplicate or another tenant's row would have arrived too.
      await sleep(200);
      for (const c of all) expect(c.got).toEqual(want[c.tenant]);
      await db.query(`delete from orders`);
    } finally {
      for (const c of all) await c.close();
      await server.stop();
    }
  });
});
