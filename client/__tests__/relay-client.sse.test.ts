// The client over Server-Sent Events against a real relay (issue 14): `transport: 'sse'` through a snapshot, live changes and
// a SIGKILLed relay (every transaction once), a refused subscription and a refused token; `auto` behind a proxy that refuses
// WebSockets, and across a relay that is down.
import WebSocket from 'ws';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../shared/free-port.js';
import { createOrders, EXAMPLE_COLUMNS, insertOrder, leakGuard, passes, sleep, until, useTestDatabase } from '../../db/testing/index.js';
import { useCliProcesses, type CliProcess } from '../../relay/__tests__/support/cli-process.js';
import { startTestRelay, token, type TestRelay } from '../../relay/__tests__/support/relay-harness.js';
import { createRelayClient, type RelayClientOptions, type RelayError, type Row, type Status } from '../index.js';
import { startTestProxy } from './support/test-proxy.js';

const db = useTestDatabase();
const cli = useCliProcesses();
let relay: TestRelay;

beforeAll(async () => {
  await createOrders(db, { id: 'bigserial primary key', columns: { customer: EXAMPLE_COLUMNS.customer, status: EXAMPLE_COLUMNS.status } });
  await db.query(`
    insert into orders (tenant_id, customer, status) values ('acme', 'Ada', 'paid'), ('acme', 'Grace', 'open'), ('globex', 'Hank', 'paid');
  `);
  relay = await startTestRelay(db);
});
leakGuard(() => db.name);

/** How long a wait may take here: a relay process on a busy 2-core machine. */
const patient = { timeoutMs: 20_000 };

/** Every seq of acme's orders after `after`, in order: what a subscription to acme's orders must apply, each once. */
async function expectedSeqs(after: number): Promise<number[]> {
  const { rows } = await db.query<{ seq: number }>(
    `select distinct t.seq::int as seq from relay.transactions t join relay.changes c using (txid)
      where c.table_name = 'orders' and c.tenant = 'acme' and t.seq > $1 order by 1`,
    [after],
  );
  return rows.map((r) => r.seq);
}

const acmeRows = async () => (await db.query(`select row from relay.snapshot('orders', 'acme') order by (row->>'id')::bigint`)).rows.map((r) => r.row as Row);
const insert = (customer: string, status = 'open', tenant = 'acme') => insertOrder(db, { tenant_id: tenant, customer, status });

/** A WebSocket constructor that must not be used: counts the attempts and throws. */
function noWebSocket() {
  const made = { count: 0 };
  const WS = function () {
    made.count++;
    throw new Error('no WebSocket here');
  } as unknown as RelayClientOptions['WebSocket'];
  return { WS, made };
}

/** A client subscribed to acme's orders (with a snapshot), recording what its handlers are given. */
function recordingClient(options: Omit<RelayClientOptions, 'token'> & { token?: RelayClientOptions['token'] }) {
  const client = createRelayClient({ token: () => token({ tenant_id: 'acme' }), backoff: { minMs: 50, maxMs: 400 }, ...options });
  const statuses: Status[] = [];
  const errors: RelayError[] = [];
  client.onStatus(({ to }) => void statuses.push(to));
  const seqs: number[] = [];
  let snapshot: { rows: Row[]; seq: number } | undefined;
  let resets = 0;
  const sub = client.subscribe('orders', { snapshot: true }, {
    onSnapshot: (rows, seq) => (snapshot = { rows, seq }),
    onTransaction: (tx) => void seqs.push(tx.seq),
    onReset: () => void resets++,
    onError: (e) => void errors.push(e),
  });
  return { client, sub, statuses, errors, seqs, snapshot: () => snapshot, resets: () => resets };
}

describe("transport: 'sse'", () => {
  it('delivers the snapshot, live changes through a filter, and every transaction once across a SIGKILLed relay', async () => {
    const port = await freePort();
    const first = await cli.startRelay(db, port);
    const { WS, made } = noWebSocket();
    const r = recordingClient({ url: `ws://127.0.0.1:${port}/ws`, transport: 'sse', WebSocket: WS });
    const paid: string[] = [];
    r.client.subscribe('orders', { filter: { status: { eq: 'paid' } } }, { onChange: (c) => void paid.push(`${c.op} ${c.row?.customer}`) });
    let second: CliProcess | undefined;
    try {
      await until(passes(() => expect(r.snapshot()).toBeDefined()), patient);
      expect(r.snapshot()!.rows).toEqual(await acmeRows());
      const start = r.snapshot()!.seq;

      await insert('Katherine', 'paid');
      await insert('Margaret');
      await insert('Mr Burns', 'paid', 'globex');
      await until(passes(async () => expect(r.seqs).toEqual(await expectedSeqs(start))), patient);
      await until(passes(() => expect(paid).toEqual(['insert Katherine'])), patient);

      first.signal('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      await until(passes(() => expect(r.client.status).toBe('reconnecting')), patient);
      for (let i = 0; i < 5; i++) await insert(`during ${i}`, i % 2 ? 'paid' : 'open'); // committed while no relay runs
      second = await cli.startRelay(db, port);
      await until(passes(() => expect(r.client.status).toBe('open')), patient);
      for (let i = 0; i < 5; i++) await insert(`after ${i}`);
      const want = await expectedSeqs(start);
      await until(passes(() => expect(r.seqs.length).toBeGreaterThanOrEqual(want.length)), patient);
      expect(r.seqs).toEqual(want); // each transaction once, in order, none missing
      expect(r.resets()).toBe(0);
      expect(r.statuses).toEqual(['open', 'reconnecting', 'open']);
      await until(passes(() => expect(paid).toEqual(['insert Katherine', 'insert during 1', 'insert during 3'])), patient);
      expect(made.count).toBe(0);
      expect(r.errors).toEqual([]);
    } finally {
      r.client.close();
      for (const p of [second, first]) {
        p?.signal('SIGTERM');
        await p?.exited;
      }
    }
  }, 240_000);

  it("a subscription the relay refuses gets its onError; the client's other subscriptions go on", async () => {
    // A query on the WebSocket URL is not carried over to the derived SSE URL (http://…/sse).
    const r = recordingClient({ url: `${relay.url}?feed=x`, transport: 'sse' });
    const errors: RelayError[] = [];
    r.client.subscribe('no_such_table' as never, {}, { onError: (e) => void errors.push(e) });
    try {
      await until(passes(() => expect(errors.map((e) => e.code)).toEqual(['unknown_table'])), patient);
      await until(passes(() => expect(r.snapshot()).toBeDefined()), patient);
      await insert('Frances');
      await until(passes(async () => expect(r.seqs).toEqual(await expectedSeqs(r.snapshot()!.seq))), patient);
      expect(r.statuses).toEqual(['open']);
    } finally {
      r.client.close();
    }
  });

  it('a connection gone silent (a proxy that stops passing data) is dropped by the heartbeat and resumed; a quiet live one is kept', async () => {
    const proxy = await startTestProxy(relay.port, { websockets: false });
    const r = recordingClient({ url: proxy.url, transport: 'sse', heartbeat: { idleMs: 200, timeoutMs: 300 } });
    try {
      await until(passes(() => expect(r.snapshot()).toBeDefined()), patient);
      const start = r.snapshot()!.seq;
      // Pings every 200 ms with nothing else to say: answered, since the streams spoke within the last 20 s.
      await sleep(1500);
      expect(r.statuses).toEqual(['open']);
      proxy.freeze();
      await insert('Lise');
      // Silent from now on, not even the relay's 15 s `: ping`: the pings go unanswered once the last traffic is 20 s old.
      await until(passes(() => expect(r.statuses).toEqual(['open', 'reconnecting', 'open'])), { timeoutMs: 40_000 });
      await until(passes(async () => expect(r.seqs).toEqual(await expectedSeqs(start))), patient);
      expect(r.resets()).toBe(0);
    } finally {
      r.client.close();
      await proxy.close();
    }
  }, 60_000);

  it('presence over SSE: members of the tenant, one per person, joins and leaves; a token without sub is told why', async () => {
    const person = (sub: string, name: string, transport: 'sse' | 'websocket') => {
      const client = createRelayClient({ url: relay.url, token: () => token({ tenant_id: 'acme', sub, name }), transport, WebSocket: WebSocket as never });
      const seen = { names: '' };
      const stop = client.presence((members) => void (seen.names = members.map((m) => m.name ?? m.sub).sort().join()));
      return { client, seen, stop };
    };
    const ann = person('u-ann', 'Ann', 'sse');
    const bob = person('u-bob', 'Bob', 'websocket');
    const errors: RelayError[] = [];
    const nobody = createRelayClient({ url: relay.url, token: () => token({ tenant_id: 'acme' }), transport: 'sse', onError: (e) => void errors.push(e) });
    try {
      await until(passes(() => expect([ann.seen.names, bob.seen.names]).toEqual(['Ann,Bob', 'Ann,Bob'])), patient);
      ann.stop(); // leaves: its presence stream ends, the client stays open
      await until(passes(() => expect(bob.seen.names).toBe('Bob')), patient);
      expect(ann.client.status).toBe('open');
      nobody.presence(() => {});
      await until(passes(() => expect(errors.map((e) => e.code)).toEqual(['presence_not_allowed'])), patient);
      expect(nobody.status).toBe('open');
    } finally {
      for (const c of [ann.client, bob.client, nobody]) c.close();
    }
  });

  it("a refused static token: onError gets bad_token with the relay's reason, the client closes and does not retry", async () => {
    const errors: RelayError[] = [];
    const bad = await token({ tenant_id: 'acme' }, { secret: 'another-secret-another-secret-another-secret' });
    const client = createRelayClient({ url: relay.url, token: bad, transport: 'sse', backoff: { minMs: 20, maxMs: 100 }, onError: (e) => void errors.push(e) });
    await until(passes(() => expect(client.status).toBe('closed')), { timeoutMs: 10_000 });
    await sleep(300); // with a 20–100 ms backoff, a retrying client would have come back by now
    expect(errors.map((e) => [e.code, e.message, e.closeCode])).toEqual([['bad_token', 'The relay refused the token: token signature invalid.', 4401]]);
    expect(client.lastError).toBe(errors[0]);
  });
});

describe("transport: 'auto'", () => {
  it('moves to SSE behind a proxy that refuses WebSockets (two refusals, each followed by an SSE check that passes), and keeps every transaction across cuts', async () => {
    const proxy = await startTestProxy(relay.port, { websockets: false });
    const r = recordingClient({ url: proxy.url, WebSocket: WebSocket as never });
    try {
      await until(passes(() => expect(r.snapshot()).toBeDefined()), patient);
      expect(r.statuses).toEqual(['reconnecting', 'open']);
      // refused, check passed (closed: may have been a relay just starting), refused again at once, check passed: SSE, and its stream
      expect(proxy.log).toEqual(['upgrade refused', 'http passed', 'upgrade refused', 'http passed', 'http passed']);
      const start = r.snapshot()!.seq;
      await insert('Hedy');
      await until(passes(async () => expect(r.seqs).toEqual(await expectedSeqs(start))), patient);

      // Cuts: SSE for the rest of the client's life, no more WebSocket attempts; every transaction once.
      for (const name of ['Radia', 'Barbara']) {
        const opens = r.statuses.length;
        proxy.cut();
        await until(passes(() => expect(r.statuses).toHaveLength(opens + 2)), patient);
        await insert(name);
      }
      await until(passes(async () => expect(r.seqs).toEqual(await expectedSeqs(start))), patient);
      expect(r.statuses.at(-1)).toBe('open');
      expect(proxy.count('upgrade refused')).toBe(2);
      expect([r.resets(), r.errors, r.client.lastError]).toEqual([0, [], undefined]);
    } finally {
      r.client.close();
      await proxy.close();
    }
  });

  it('an SSE check that passes once (as when a relay is just starting) does not move the client: a WebSocket again at once', async () => {
    const proxy = await startTestProxy(relay.port, { websockets: false });
    proxy.onRequest = (e) => e == 'upgrade refused' && (proxy.websockets = true);
    const r = recordingClient({ url: proxy.url, WebSocket: WebSocket as never });
    try {
      await until(passes(() => expect(r.snapshot()).toBeDefined()), patient);
      expect(r.statuses).toEqual(['reconnecting', 'open']);
      expect(proxy.log).toEqual(['upgrade refused', 'http passed', 'upgrade passed']);
    } finally {
      r.client.close();
      await proxy.close();
    }
  });

  it('a relay that is down fails WebSocket and SSE alike: checked after the 1st, 2nd, 4th failure only, and back on WebSockets once it is up', async () => {
    const proxy = await startTestProxy(relay.port, { websockets: true });
    const r = recordingClient({ url: proxy.url, WebSocket: WebSocket as never });
    try {
      await until(passes(() => expect(r.snapshot()).toBeDefined()), patient);
      expect(proxy.log).toEqual(['upgrade passed']);
      const start = r.snapshot()!.seq;
      // Down until three SSE checks have failed, then up before the next WebSocket attempt.
      proxy.down = true;
      let checks = 0;
      proxy.onRequest = (e) => e == 'http dropped' && ++checks == 3 && (proxy.down = false);
      proxy.cut();
      await insert('Annie');
      await until(passes(() => expect(r.statuses).toEqual(['open', 'reconnecting', 'open'])), patient);
      // The WebSocket died within 10 s of its welcome: that is failure 1.
      expect(proxy.log).toEqual(['upgrade passed', 'http dropped', 'upgrade dropped', 'http dropped', 'upgrade dropped', 'upgrade dropped', 'http dropped', 'upgrade passed']);
      await insert('Mary');
      await until(passes(async () => expect(r.seqs).toEqual(await expectedSeqs(start))), patient);
      expect(r.resets()).toBe(0);
    } finally {
      r.client.close();
      await proxy.close();
    }
  });

  it('a WebSocket constructor that throws: SSE after two throws, and no error reported for them', async () => {
    const { WS, made } = noWebSocket();
    const r = recordingClient({ url: relay.url, WebSocket: WS });
    try {
      await until(passes(() => expect(r.snapshot()).toBeDefined()), patient);
      expect(made.count).toBe(2);
      expect(r.statuses).toEqual(['reconnecting', 'open']);
      expect([r.client.lastError, r.errors]).toEqual([undefined, []]);
      await insert('Joan');
      await until(passes(async () => expect(r.seqs).toEqual(await expectedSeqs(r.snapshot()!.seq))), patient);
    } finally {
      r.client.close();
    }
  });
});
