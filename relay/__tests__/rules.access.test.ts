// Access rules (issue 15): the seeds' cases (an admin-only table, a cashier's own till, a manager's margin column), relay.allow's checks, resume and token refresh under rules.
import { beforeAll, describe, expect, it } from 'vitest';
import { leakGuard, sleep, until, useTestDatabase } from '../../db/testing/index.js';
import { caughtUp, connect, delivered, startTestRelay, subscribeAnswer, token, type Frame, type TestClient, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
let relay: TestRelay;

beforeAll(async () => {
  await db.query(`
    create table ventas (folio int primary key, idnegocio int not null, cajero_id text not null, total numeric(10,2), margen numeric(10,2), estado text, card_token text);
    create table reportes (id int primary key, idnegocio int not null, resumen text);
    create table productos (id int primary key, idnegocio int not null, nombre text);
    select relay.watch('ventas', 'idnegocio', '{card_token}');
    select relay.watch('reportes', 'idnegocio');
    select relay.watch('productos', 'idnegocio');
    select relay.allow('ventas', 'cajero', rows => '{"cajero_id": {"eq": {"claim": "sub"}}}', columns => '{total,estado}');
    select relay.allow('ventas', 'gerente');
    select relay.allow('reportes', 'admin');
  `);
  // a ring of 2 transactions: resumed subscriptions below read the log
  relay = await startTestRelay(db, { RELAY_HISTORY_TX: '2' });
});
leakGuard(() => db.name);

const cashier = (sub: string) => token({ tenant_id: 1, role: 'cajero', sub });
const manager = () => token({ tenant_id: 1, role: 'gerente', sub: 'g1' });

/** Waits until the relay has published everything committed and each client has read it. */
async function settle(...clients: TestClient[]): Promise<void> {
  await delivered(db, relay, clients);
  await sleep(30);
}

const changes = (c: TestClient, sub: string) => c.txs(sub).flatMap((f) => f.changes as Array<Record<string, any>>);
const snapshotRows = (c: TestClient, sub: string) => c.frames.filter((f) => f.type === 'snapshot' && f.sub === sub).flatMap((f) => f.rows as Array<Record<string, unknown>>);

describe('the seeds\' cases', () => {
  it('an admin-only table refuses a non-admin token, a token without a role, and lets the admin in', async () => {
    const clerk = await connect(relay.url, await token({ tenant_id: 1, role: 'cajero', sub: 'c1' }));
    const noRole = await connect(relay.url, await token({ tenant_id: 1 }));
    const admin = await connect(relay.url, await token({ tenant_id: 1, role: 'admin' }));
    try {
      expect(await subscribeAnswer(clerk, 'r', 'reportes')).toMatchObject({ type: 'error', code: 'table_not_allowed', message: expect.stringContaining('"cajero" has no rule on public.reportes') });
      expect(await subscribeAnswer(clerk, 'rs', 'reportes', { snapshot: true })).toMatchObject({ type: 'error', code: 'table_not_allowed' });
      expect(await subscribeAnswer(clerk, 'r0', 'reportes', { since: 0 })).toMatchObject({ type: 'error', code: 'table_not_allowed' });
      expect(await subscribeAnswer(noRole, 'r', 'reportes')).toMatchObject({ type: 'error', code: 'table_not_allowed', message: expect.stringContaining('no role claim') });
      expect(await subscribeAnswer(admin, 'r', 'reportes')).toMatchObject({ type: 'subscribed' });
      // a table with no rule: every token of the tenant sees it, as before rules existed
      expect(await subscribeAnswer(clerk, 'p', 'productos')).toMatchObject({ type: 'subscribed' });
      expect(await subscribeAnswer(noRole, 'p', 'productos')).toMatchObject({ type: 'subscribed' });
      await db.query(`insert into reportes values (1, 1, 'cierre de caja'); insert into productos values (1, 1, 'café')`);
      await settle(clerk, noRole, admin);
      expect(changes(admin, 'r').map((ch) => ch.row)).toEqual([{ id: 1, idnegocio: 1, resumen: 'cierre de caja' }]);
      expect(changes(clerk, 'p').map((ch) => ch.row.nombre)).toEqual(['café']);
      expect(clerk.txs('r')).toEqual([]);
    } finally {
      await Promise.all([clerk.close(), noRole.close(), admin.close()]);
    }
  });

  it('a cashier sees only the sales of their own till, live and in a snapshot; a manager sees the margin column the cashier does not', async () => {
    await db.query(`insert into ventas values (10, 1, 'c1', 5.00, 1.00, 'abierta', 'tok'), (11, 1, 'c2', 7.00, 2.00, 'abierta', 'tok'), (12, 2, 'c1', 9.00, 3.00, 'abierta', 'tok')`);
    await caughtUp(db, relay);
    const c1 = await connect(relay.url, await cashier('c1'));
    const boss = await connect(relay.url, await manager());
    try {
      expect(await subscribeAnswer(c1, 'snap', 'ventas', { snapshot: true })).toMatchObject({ type: 'subscribed' });
      expect(await subscribeAnswer(c1, 'live', 'ventas')).toMatchObject({ type: 'subscribed' });
      expect(await subscribeAnswer(boss, 'snap', 'ventas', { snapshot: true })).toMatchObject({ type: 'subscribed' });
      expect(await subscribeAnswer(boss, 'live', 'ventas')).toMatchObject({ type: 'subscribed' });
      await c1.until(() => c1.frames.some((f) => f.type === 'snapshot' && f.more === false), 5_000, 'the cashier snapshot');
      await boss.until(() => boss.frames.some((f) => f.type === 'snapshot' && f.more === false), 5_000, 'the manager snapshot');
      // the key always travels; tenant 2's c1 is another business's cashier
      expect(snapshotRows(c1, 'snap')).toEqual([{ folio: 10, total: '5.00', estado: 'abierta' }]);
      expect(snapshotRows(boss, 'snap').map((r) => [r.folio, r.margen, r.cajero_id]).sort()).toEqual([[10, '1.00', 'c1'], [11, '2.00', 'c2']]);

      await db.query(`insert into ventas values (13, 1, 'c1', 3.00, 0.50, 'abierta', 'tok'), (14, 1, 'c2', 4.00, 0.70, 'abierta', 'tok')`);
      await db.query(`update ventas set margen = 1.10 where folio = 10`); // only a column the cashier does not see
      await db.query(`update ventas set estado = 'pagada', margen = 2.20 where folio = 11`); // not the cashier's sale
      await db.query(`update ventas set cajero_id = 'c2' where folio = 13`); // leaves c1's view: a delete
      await db.query(`update ventas set cajero_id = 'c1', estado = 'reasignada' where folio = 14`); // enters it: an insert
      await db.query(`update ventas set estado = 'pagada', margen = 0 where folio = 10`);
      await db.query(`delete from ventas where folio = 14`);
      await settle(c1, boss);
      expect(changes(c1, 'live').map((ch) => [ch.op, ch.pk, ch.row, ch.old ?? null])).toEqual([
        ['insert', { folio: 13 }, { folio: 13, total: '3.00', estado: 'abierta' }, null],
        ['delete', { folio: 13 }, { folio: 13, total: '3.00', estado: 'abierta' }, null],
        ['insert', { folio: 14 }, { folio: 14, total: '4.00', estado: 'reasignada' }, null],
        ['update', { folio: 10 }, { folio: 10, total: '5.00', estado: 'pagada' }, { estado: 'abierta' }],
        ['delete', { folio: 14 }, { folio: 14, total: '4.00', estado: 'reasignada' }, null],
      ]);
      const seen = JSON.stringify(c1.frames);
      expect(seen).not.toMatch(/margen|cajero_id|idnegocio|card_token|tok"/);
      const bossLive = changes(boss, 'live');
      expect(bossLive.map((ch) => [ch.op, ch.pk.folio])).toEqual([['insert', 13], ['insert', 14], ['update', 10], ['update', 11], ['update', 13], ['update', 14], ['update', 10], ['delete', 14]]);
      expect(bossLive[2]).toMatchObject({ row: { margen: '1.10' }, old: { margen: '1.00' } });
      expect(JSON.stringify(boss.frames)).not.toMatch(/card_token/);
    } finally {
      await Promise.all([c1.close(), boss.close()]);
    }
  });

  it('a cashier\'s filter on a column the role does not see is refused; on a visible one it narrows the rule', async () => {
    const c1 = await connect(relay.url, await cashier('c1'));
    try {
      expect(await subscribeAnswer(c1, 'm', 'ventas', { filter: { margen: { gt: 0 } } })).toMatchObject({ type: 'error', code: 'bad_filter', message: expect.stringContaining('your role does not see it') });
      expect(await subscribeAnswer(c1, 'k', 'ventas', { filter: { cajero_id: { eq: 'c2' } }, snapshot: true })).toMatchObject({ type: 'error', code: 'bad_filter' });
      expect(await subscribeAnswer(c1, 'e', 'ventas', { filter: { estado: { eq: 'pagada' } }, snapshot: true })).toMatchObject({ type: 'subscribed' });
      await c1.until(() => c1.frames.some((f) => f.type === 'snapshot' && f.sub === 'e' && f.more === false), 5_000, 'the snapshot');
      const { rows } = await db.query(`select folio from ventas where idnegocio = 1 and cajero_id = 'c1' and estado = 'pagada' order by folio`);
      expect(snapshotRows(c1, 'e').map((r) => r.folio)).toEqual(rows.map((r) => r.folio));
      expect(rows.length).toBeGreaterThan(0);
    } finally {
      await c1.close();
    }
  });

  it('a subscription resumed from the log or the ring gets only the rule\'s rows and columns', async () => {
    await caughtUp(db, relay);
    const from = relay.position;
    for (let i = 0; i < 5; i++) {
      await db.query(`insert into ventas values ($1, 1, $2, 1.00, 9.99, 'abierta', 'tok')`, [100 + i, i % 2 === 0 ? 'c1' : 'c2']);
    }
    await db.query(`update ventas set margen = 0.01 where folio = 100`);
    await caughtUp(db, relay);
    const c1 = await connect(relay.url, await cashier('c1'));
    try {
      expect(await subscribeAnswer(c1, 'log', 'ventas', { since: from })).toMatchObject({ type: 'subscribed' });
      expect(await subscribeAnswer(c1, 'ring', 'ventas', { since: relay.position - 1 })).toMatchObject({ type: 'subscribed' });
      await db.query(`insert into ventas values (110, 1, 'c1', 1.00, 9.99, 'abierta', 'tok'), (111, 1, 'c2', 1.00, 9.99, 'abierta', 'tok')`);
      await settle(c1);
      expect(changes(c1, 'log').map((ch) => [ch.op, ch.row])).toEqual([100, 102, 104, 110].map((f) => ['insert', { folio: f, total: '1.00', estado: 'abierta' }]));
      expect(changes(c1, 'ring').map((ch) => ch.pk.folio)).toEqual([110]);
      expect(JSON.stringify(c1.frames)).not.toMatch(/margen|cajero_id|"9\.99"/);
    } finally {
      await c1.close();
    }
  });

  it('a token missing a claim its rule needs, or whose claim does not fit the column, is refused', async () => {
    const noSub = await connect(relay.url, await token({ tenant_id: 1, role: 'cajero' }));
    const objectSub = await connect(relay.url, await token({ tenant_id: 1, role: 'cajero', sub: { id: 1 } }));
    try {
      expect(await subscribeAnswer(noSub, 'v', 'ventas')).toMatchObject({ type: 'error', code: 'table_not_allowed', message: expect.stringContaining('needs the claim sub') });
      expect(await subscribeAnswer(objectSub, 'v', 'ventas')).toMatchObject({ type: 'error', code: 'table_not_allowed' });
    } finally {
      await Promise.all([noSub.close(), objectSub.close()]);
    }
  });

  it('an auth refresh with another value of a claim a subscribed rule names (another cashier) closes the socket with 4003', async () => {
    const c1 = await connect(relay.url, await cashier('c1'));
    expect(await subscribeAnswer(c1, 'v', 'ventas')).toMatchObject({ type: 'subscribed' });
    c1.send({ type: 'auth', token: await cashier('c1') });
    c1.send({ type: 'ping' });
    await c1.next((f) => f.type === 'pong');
    c1.send({ type: 'auth', token: await cashier('c2') });
    expect(await c1.closed).toMatchObject({ code: 4003 });
  });
});

describe('relay.allow, relay.disallow, relay.watched', () => {
  it('refuses rules naming columns that are not streamed, bad operators or values, and unwatched tables', async () => {
    const bad: Array<[string, string]> = [
      [`select relay.allow('ventas', 'x', columns => '{nope}')`, 'PR013'],
      [`select relay.allow('ventas', 'x', columns => '{card_token}')`, 'PR013'],
      [`select relay.allow('ventas', 'x', rows => '{"nope": {"eq": 1}}')`, 'PR013'],
      [`select relay.allow('ventas', 'x', rows => '{"card_token": {"eq": "a"}}')`, 'PR013'],
      [`select relay.allow('ventas', 'x', rows => '{"total": {"like": 1}}')`, 'PR013'],
      [`select relay.allow('ventas', 'x', rows => '{"total": {"gt": "abc"}}')`, 'PR013'],
      [`select relay.allow('ventas', 'x', rows => '{"total": {"gt": {"claim": 3}}}')`, 'PR013'],
      [`select relay.allow('ventas', 'x', rows => '[1]')`, 'PR013'],
      [`select relay.allow('ventas', '', rows => null)`, 'PR013'],
      [`create table unwatched_t (id int primary key); select relay.allow('unwatched_t', 'x')`, 'PR009'],
    ];
    for (const [q, code] of bad) await expect(db.query(q), q).rejects.toMatchObject({ code });
    const { rows } = await db.query(`select "table", rules from relay.watched where "table" in ('public.ventas', 'public.productos') order by 1`);
    expect(rows).toEqual([
      { table: 'public.productos', rules: [] },
      { table: 'public.ventas', rules: [
        { role: 'cajero', rows: { cajero_id: { eq: { claim: 'sub' } } }, columns: ['total', 'estado'] },
        { role: 'gerente', rows: null, columns: null },
      ] },
    ]);
  });

  it('a rule added or removed applies to the next subscription', async () => {
    const clerk = await connect(relay.url, await token({ tenant_id: 1, role: 'cajero', sub: 'c1' }));
    try {
      expect(await subscribeAnswer(clerk, 'a', 'productos')).toMatchObject({ type: 'subscribed' });
      await db.query(`select relay.allow('productos', 'admin')`);
      await until(async () => (await subscribeAnswer(clerk, `b${Math.random()}`, 'productos')).type === 'error', { what: 'the rule to apply', timeoutMs: 5_000 });
      expect(await db.query(`select relay.disallow('productos') as n`).then((r) => r.rows[0]?.n)).toBe(1);
      await until(async () => (await subscribeAnswer(clerk, `c${Math.random()}`, 'productos')).type === 'subscribed', { what: 'the rule to go', timeoutMs: 5_000 });
    } finally {
      await clerk.close();
    }
  });
});
