// Every value keeps its meaning in relay.changes: int8/numeric as strings, bytea, arrays, json, enums, domains, generated columns, odd names.
import { beforeAll, describe, expect, it } from 'vitest';
import { SESSION_OPTIONS } from '../kysely.js';
import { leakGuard, useTestDatabase } from '../testing/index.js';

const db = useTestDatabase();
leakGuard(() => db.name);

beforeAll(async () => {
  await db.query(`
    create type mood as enum ('sad', 'ok', 'happy');
    create domain price as numeric(10,2) check (value >= 0);
    create domain big_id as bigint;
    create table kinds (
      id bigint primary key,
      tenant_id int,
      small int2, whole int4, big int8, exact numeric, money_ish price, did big_id,
      f4 real, f8 double precision,
      flag boolean, txt text, vc varchar(10), ch char(3),
      raw bytea,
      ints int[], texts text[], bigs int8[],
      j json, jb jsonb,
      m mood,
      d date, ts timestamp, tstz timestamptz, iv interval,
      u uuid,
      twice int generated always as (whole * 2) stored
    );
    create schema "Sales Dept";
    create table "Sales Dept"."Order Lines" ("Line Id" int primary key, "Tenant" text, "Qty" int, "select" text);
    select relay.watch('kinds', 'tenant_id');
    select relay.watch('"Sales Dept"."Order Lines"', 'Tenant');
  `);
});

async function lastChange(): Promise<{ tenant: string | null; schema_name: string; table_name: string; op: string; pk: unknown; row: any; old: any }> {
  await db.tick();
  // relay.changes renders timestamptz and interval values as the reading session does: pgrelay's sessions use UTC
  const c = await db.connect({ options: SESSION_OPTIONS });
  try {
    const { rows } = await c.query(`select c.tenant, c.schema_name, c.table_name, c.op, c.pk, c.row, c.old from relay.changes c
      join relay.transactions t using (txid) order by t.seq desc, c.id desc limit 1`);
    return rows[0] as any;
  } finally {
    await c.end();
  }
}

describe('value encoding', () => {
  it('renders each type so that its JSON type never depends on its value', async () => {
    // A session in another time zone must not change what is logged.
    const c = await db.connect();
    await c.query(`set timezone = 'Asia/Kolkata'; set intervalstyle = 'iso_8601'; set extra_float_digits = 0`);
    await c.query(`insert into kinds values (
      9007199254740993, 7, 1, 2, 9223372036854775807, 123456789012345678901234567890.000000001, 12.5, 42,
      1.5, 0.1, true, 'tëxt "q"', 'short', 'ab',
      '\\x00ff10', '{1,2,3}', '{"a","b c",null}', '{9007199254740993,1}',
      '{"n": 1.10, "big": 12345}', '{"b": [1, {"c": null}]}',
      'happy', '2026-01-02', '2026-01-02 03:04:05.678', '2026-01-02 03:04:05.678+00', '1 day 02:03:04',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', default)`);
    await c.end();
    const ch = await lastChange();
    expect(ch.tenant).toBe('7');
    expect(ch.pk).toEqual({ id: '9007199254740993' });
    expect(ch.row).toEqual({
      id: '9007199254740993', tenant_id: 7,
      small: 1, whole: 2, big: '9223372036854775807', exact: '123456789012345678901234567890.000000001', money_ish: '12.50', did: '42',
      f4: 1.5, f8: 0.1, flag: true, txt: 'tëxt "q"', vc: 'short', ch: 'ab ',
      raw: '\\x00ff10', ints: [1, 2, 3], texts: ['a', 'b c', null], bigs: ['9007199254740993', '1'],
      j: { n: 1.1, big: 12345 }, jb: { b: [1, { c: null }] },
      m: 'happy', d: '2026-01-02', ts: '2026-01-02T03:04:05.678', tstz: '2026-01-02T03:04:05.678+00:00', iv: '1 day 02:03:04',
      u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', twice: 4,
    });
  });

  it('keeps small int8 and numeric values strings too', async () => {
    await db.query(`insert into kinds (id, tenant_id, big, exact, money_ish) values (1, 7, 5, 0, 0)`);
    const ch = await lastChange();
    expect(ch.row).toMatchObject({ id: '1', big: '5', exact: '0', money_ish: '0.00' });
    expect(ch.row.big).toBeTypeOf('string');
  });

  it('updates log the new row and the old values of the changed columns only', async () => {
    await db.query(`update kinds set whole = 10, txt = null where id = 1`);
    const ch = await lastChange();
    expect(ch.op).toBe('update');
    expect(ch.row).toMatchObject({ whole: 10, twice: 20, txt: null });
    expect(ch.old).toEqual({ whole: null, twice: null });
  });

  it('deletes log the old row', async () => {
    await db.query(`delete from kinds where id = 1`);
    const ch = await lastChange();
    expect(ch).toMatchObject({ op: 'delete', pk: { id: '1' }, old: null });
    expect(ch.row).toMatchObject({ id: '1', whole: 10 });
  });

  it('handles quoted, mixed-case and reserved names', async () => {
    await db.query(`insert into "Sales Dept"."Order Lines" values (1, 'T1', 3, 'x')`);
    await db.query(`update "Sales Dept"."Order Lines" set "Qty" = 4 where "Line Id" = 1`);
    const ch = await lastChange();
    expect(ch).toEqual({
      tenant: 'T1', schema_name: 'Sales Dept', table_name: 'Order Lines', op: 'update',
      pk: { 'Line Id': 1 }, row: { 'Line Id': 1, Tenant: 'T1', Qty: 4, select: 'x' }, old: { Qty: 3 },
    });
  });

  it('pairs old and new rows of a multi-row update that changes primary keys', async () => {
    await db.query(`insert into kinds (id, tenant_id, whole) select g, 1, g from generate_series(100, 149) g`);
    await db.query(`update kinds set id = id + 1000, whole = whole + 1 where id between 100 and 149`);
    await db.tick();
    const { rows } = await db.query(`select c.row, c.old from relay.changes c join relay.transactions t using (txid)
      where t.seq = (select max(seq) from relay.transactions) order by c.id`);
    expect(rows).toHaveLength(50);
    for (const { row, old } of rows as Array<{ row: any; old: any }>) {
      expect(Number(row.id) - Number(old.id)).toBe(1000);
      expect(row.whole - old.whole).toBe(1);
      expect(Number(old.id)).toBe(old.whole);
    }
  });
});
