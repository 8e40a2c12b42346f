// Rows on the wire (issue 13): snapshot rows and tx rows are serialized the same way, compact, keys in table column order
// (jsonb would order them shortest first), whether they come live, from the ring or from the log.
import { beforeAll, describe, expect, it } from 'vitest';
import { leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { connect, startTestRelay, token, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
let relay: TestRelay;
let ringless: TestRelay;

beforeAll(async () => {
  await db.query(`
    create table items (zeta_long_name text, id int, tenant_id text not null, b numeric, a jsonb, secret text, primary key (tenant_id, id));
    select relay.watch('items', 'tenant_id', '{secret}');
    insert into items values ('z1', 1, 't', 1.50, '{"y": 1, "x": [1, 2]}', 's');
  `);
  relay = await startTestRelay(db);
  // no ring: every resume is read from the log
  ringless = await startTestRelay(db, { RELAY_HISTORY_TX: '0' });
});
leakGuard(() => db.name);

const order = ['zeta_long_name', 'id', 'tenant_id', 'b', 'a'];

/** The raw text of each frame, as the socket received it. */
function raw(c: Awaited<ReturnType<typeof connect>>): string[] {
  const texts: string[] = [];
  c.ws.on('message', (d) => texts.push(d.toString()));
  return texts;
}
/** The text of the first row object in a frame: what follows `"rows":[` or `"row":`, up to its balanced brace. */
function rowText(frame: string, key: '"rows":[' | '"row":'): string {
  const start = frame.indexOf(key) + key.length;
  let depth = 0;
  for (let i = start; i < frame.length; i++) {
    if (frame[i] === '{') depth++;
    else if (frame[i] === '}' && --depth === 0) return frame.slice(start, i + 1);
  }
  throw new Error(`no row in ${frame}`);
}

describe('rows on the wire', () => {
  it('look the same in snapshot and tx frames: compact, in column order, primary key in its own order', async () => {
    const c = await connect(relay.url, await token({ tenant_id: 't' }));
    const texts = raw(c);
    c.send({ type: 'subscribe', id: 's', table: 'items', snapshot: true });
    await c.next((f) => f.type === 'snapshot');
    const since = (await db.query<{ p: string }>('select relay.position()::text as p')).rows[0]!.p;
    await db.query(`insert into items values ('z2', 2, 't', 2.50, '{"y": 1, "x": [1, 2]}', 's')`);
    await db.query(`update items set b = 3, zeta_long_name = 'z2b' where id = 2`);
    await c.next((f) => f.type === 'tx' && f.changes[0].op === 'update');
    const snapshotRow = rowText(texts.find((t) => t.includes('"type":"snapshot"'))!, '"rows":[');
    const insertRow = rowText(texts.find((t) => t.includes('"op":"insert"'))!, '"row":');
    expect(snapshotRow).toBe('{"zeta_long_name":"z1","id":1,"tenant_id":"t","b":"1.50","a":{"x":[1,2],"y":1}}');
    expect(insertRow).toBe('{"zeta_long_name":"z2","id":2,"tenant_id":"t","b":"2.50","a":{"x":[1,2],"y":1}}');
    const update = JSON.parse(texts.find((t) => t.includes('"op":"update"'))!);
    expect(Object.keys(update.changes[0].row)).toEqual(order);
    expect(Object.keys(update.changes[0].old)).toEqual(['zeta_long_name', 'b']);
    expect(Object.keys(update.changes[0].pk)).toEqual(['tenant_id', 'id']);
    await c.close();

    // the same frames read back from the ring and from the log
    for (const r of [relay, ringless]) {
      const d = await connect(r.url, await token({ tenant_id: 't' }));
      const again = raw(d);
      d.send({ type: 'subscribe', id: 's', table: 'items', since: Number(since) });
      await d.next((f) => f.type === 'tx' && f.changes[0].op === 'update');
      expect(rowText(again.find((t) => t.includes('"op":"insert"'))!, '"row":')).toBe(insertRow);
      expect(Object.keys(JSON.parse(again.find((t) => t.includes('"op":"update"'))!).changes[0].pk)).toEqual(['tenant_id', 'id']);
      await d.close();
    }
  });
});
