// Connection storms: thousands of bad and good upgrades at once, and every client of the real client library reconnecting after a SIGKILLed relay restarts; nothing lost.
import WebSocket from 'ws';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRelayClient, type RelayClient } from '../../client/index.js';
import { freePort } from '../../client/shared/free-port.js';
import { createTenantTable, keepWriting, leakGuard, sleep, useTestDatabase } from '../../db/testing/index.js';
import { reportFigures, stormSize } from './support/fuzz-budget.js';
import { useCliProcesses } from './support/cli-process.js';
import { pool, rawUpgrade } from './support/raw-upgrade.js';
import { connect, httpGet, metric, startTestRelay, token, type TestClient, type TestRelay } from './support/relay-harness.js';
import { warmRelayPool } from './support/warm-pool.js';

const db = useTestDatabase();
let relay: TestRelay;
const figures: Record<string, unknown> = {};

beforeAll(async () => {
  await createTenantTable(db, 'st', { columns: { n: 'int' } });
  relay = await startTestRelay(db);
});
beforeEach(() => warmRelayPool(relay.url, 'st'));
leakGuard(() => db.name);


/** A raw socket that waits for its welcome: the cheapest real client. */
function openSocket(url: string, jwt: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['pgrelay.v1', `bearer.${jwt}`]);
    ws.once('message', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

async function writeRows(tenants: string[], n: number, tag: number): Promise<void> {
  const c = await db.connect();
  try {
    for (let i = 0; i < n; i++) await c.query(`insert into st (tenant_id, n) values ($1, $2)`, [tenants[i % tenants.length], tag + i]);
  } finally {
    await c.end();
  }
}

describe('connection storm', () => {
  it('bad and good upgrades at once: every bad one 401, every good one welcomed and held, the relay ready and streaming throughout', async () => {
    const n = stormSize(2000);
    const control = await connect(relay.url, await token({ tenant_id: 'ctl' }));
    control.send({ type: 'subscribe', id: 'c', table: 'st' });
    await control.next((f) => f.type === 'subscribed');
    const good = await token({ tenant_id: 'storm' });
    const bad = [await token({ tenant_id: 'storm' }, { secret: 'not-the-secret-not-the-secret-not-the' }), 'garbage', await token({ tenant_id: 'storm' }, { expiresIn: Math.floor(Date.now() / 1000) - 5 })];
    const held: WebSocket[] = [];
    let readyChecks = 0;
    let notReady = 0;
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const r = await httpGet(`${relay.http}/readyz`);
        readyChecks++;
        if (r.status !== 200) notReady++;
        await sleep(50);
      }
    })();
    const t0 = Date.now();
    const writer = keepWriting(db, (c, n) => c.query(`insert into st (tenant_id, n) values ('ctl', $1)`, [n]), { pauseMs: 20 });
    let written = 0;
    try {
      const [badOut] = await Promise.all([
        pool(n, 64, (i) => rawUpgrade(relay.port, bad[i % bad.length]!, i % 2 ? 'query' : 'protocol')),
        pool(n, 64, async () => {
          held.push(await openSocket(relay.url, good));
        }),
      ]);
      const elapsed = Date.now() - t0;
      expect(badOut.filter((o) => o.status !== 401)).toEqual([]);
      expect(held.length).toBe(n);
      expect(relay.connections).toBeGreaterThanOrEqual(n + 1);
      const text = (await httpGet(`${relay.http}/metrics`)).body;
      expect(metric(text, 'pgrelay_connections', '{transport="websocket"}')).toBeGreaterThanOrEqual(n + 1);
      Object.assign(figures, { stormBad: n, stormGood: n, stormHeldOpen: held.length, stormSeconds: elapsed / 1000, stormUpgradesPerSecond: Math.round((2 * n) / (elapsed / 1000)) });
    } finally {
      written = await writer.stop();
      probing = false;
      await prober;
      await Promise.all(held.map((ws) => new Promise<void>((r) => {
        ws.once('close', () => r());
        ws.close();
      })));
    }
    await control.until(() => control.txs('c').length >= written, 10_000, `the control client's ${written} rows`);
    expect(control.txs('c').map((f) => f.changes[0].row.n)).toEqual(Array.from({ length: written }, (_, i) => i));
    await control.close();
    Object.assign(figures, { readyzChecksDuringStorm: readyChecks, readyzNot200: notReady, controlRowsDuringStorm: written });
    expect(notReady).toBe(0);
    await expect.poll(() => relay.connections, { timeout: 10_000 }).toBe(0);
  }, 120_000);
});

describe('reconnect storm after a SIGKILL', () => {
  const cli = useCliProcesses();
  
  it('every client of the client library ends open, its subscription resumed, with no transaction lost or repeated', async () => {
    const clientsN = stormSize(2000) / 4;
    const tenants = Array.from({ length: 10 }, (_, i) => `r${i}`);
    const port = await freePort();
    const first = await cli.startRelay(db, port);
    const url = `ws://127.0.0.1:${port}/ws`;

    const clients: Array<{ client: RelayClient; tenant: string; seqs: number[]; cursor: () => number | undefined; start?: number; opens: number }> = [];
    for (let i = 0; i < clientsN; i++) {
      const tenant = tenants[i % tenants.length]!;
      const jwt = await token({ tenant_id: tenant });
      const client = createRelayClient({ url, token: () => jwt, WebSocket: WebSocket as never, backoff: { minMs: 100, maxMs: 2000 } });
      const seqs: number[] = [];
      // half of them filtered (n >= 0 holds for every row written here), so resumed filtered subscriptions are covered too
      const sub = client.subscribe('st', i % 2 ? { filter: { n: { gte: 0 } } } : {}, { onTransaction: (tx) => void seqs.push(tx.seq) });
      const entry = { client, tenant, seqs, cursor: () => sub.cursor, opens: 0 };
      client.onStatus(({ to }) => void (to === 'open' && entry.opens++));
      clients.push(entry);
    }
    try {
      await expect.poll(() => clients.filter((c) => c.cursor() === undefined).length, { timeout: 30_000, interval: 100 }).toBe(0);
      for (const c of clients) c.start = c.cursor();
      await writeRows(tenants, 20, 0);

      first.signal('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      await writeRows(tenants, 30, 1000); // committed while no relay runs
      const tRestart = Date.now();
      const second = await cli.startRelay(db, port);
      const tListening = Date.now();
      await expect.poll(() => clients.filter((c) => c.client.status === 'open' && c.opens >= 2).length, { timeout: 60_000, interval: 100 }).toBe(clientsN);
      const tAllOpen = Date.now();
      await writeRows(tenants, 20, 2000);
      await expect.poll(async () => (await httpGet(`http://127.0.0.1:${port}/readyz`)).status, { timeout: 10_000 }).toBe(200);

      const { rows } = await db.query<{ tenant: string; seq: number }>(
        `select distinct c.tenant, t.seq::int as seq from relay.transactions t join relay.changes c using (txid) where c.table_name = 'st' and c.tenant like 'r%' order by 2`);
      const lastSeq = rows.at(-1)!.seq;
      for (const c of clients) {
        const want = rows.filter((r) => r.tenant === c.tenant && r.seq > c.start!).map((r) => r.seq);
        await expect.poll(() => c.seqs.at(-1) ?? 0, { timeout: 20_000, interval: 50 }).toBe(want.at(-1));
        expect(c.seqs, `client of ${c.tenant} starting after ${c.start}`).toEqual(want);
      }
      Object.assign(figures, {
        reconnectClients: clientsN, transactionsDuringOutage: 30, relayRestartToListeningSeconds: (tListening - tRestart) / 1000,
        listeningToAllClientsOpenSeconds: (tAllOpen - tListening) / 1000, lastSeq,
      });
      second.signal('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      for (const c of clients) c.client.close();
    }
  }, 180_000);
});

afterAll(() => reportFigures('storm', figures));
