// Issue 12 (the DBA's first hour): audit --limit picks the newest changes by seq, and audit/watched text output stays aligned and complete.
import { beforeAll, describe, expect, it } from 'vitest';
import { readAudit } from '../../db/audit.js';
import { createKysely, createPool } from '../../db/kysely.js';
import { leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { cliOutput } from './support/cli-process.js';

const db = useTestDatabase();
leakGuard(() => db.name);

/** A DBA command on this file's database, run to its exit. */
const cli = (args: string[]) => cliOutput(args, { DATABASE_URL: db.url });

/** Column start offsets of a heading line: each heading word starts a column. */
function starts(heading: string): Map<string, number> {
  return new Map([...heading.matchAll(/\S+/g)].map((m) => [m[0], m.index]));
}

beforeAll(async () => {
  await db.query(`create table ventas (id int primary key, idnegocio int not null, total numeric(10,2),
    forma_de_pago_preferida_del_cliente text, observaciones_del_vendedor_en_caja text, numero_de_ticket_impreso int)`);
  await db.query(`select relay.watch('ventas', 'idnegocio')`);
  // seqs 1..12, one row each
  for (let i = 1; i <= 12; i++) await db.query(`insert into ventas (id, idnegocio, total) values ($1, 1, $2)`, [i, i]);
  await db.tick();
});

describe('issue 12: audit --limit', () => {
  it('returns the newest N changes by seq (the old code sorted seq as text: 7, 8, 9 instead of 10, 11, 12)', async () => {
    const kysely = createKysely(createPool(db.url, { max: 1 }));
    const seqs: number[] = [];
    try {
      for await (const e of readAudit(kysely, { limit: 3 })) seqs.push(e.seq);
    } finally {
      await kysely.destroy();
    }
    expect(seqs).toEqual([10, 11, 12]);
    const out = await cli(['audit', '--json', '--limit', '3']);
    expect(out.code).toBe(0);
    expect(out.out.trim().split('\n').map((l) => JSON.parse(l).seq)).toEqual([10, 11, 12]);
  });
});

describe('issue 12: text output', () => {
  it('audit keeps its columns aligned whatever a cell holds, and shows application_name and client_addr', async () => {
    const c = await db.connect({ application_name: 'pos-caja-3' });
    await c.query(`update ventas set total = 99, forma_de_pago_preferida_del_cliente = 'efectivo', observaciones_del_vendedor_en_caja = 'sin bolsa',
      numero_de_ticket_impreso = 7 where id = 12`);
    await c.query(`insert into ventas (id, idnegocio, total) values (13, 1234567890, 1)`);
    await c.end();
    await db.tick();
    const out = await cli(['audit', '--limit', '3']);
    expect(out.code).toBe(0);
    const lines = out.out.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    const heading = lines[0]!;
    const cols = [...starts(heading).values()];
    for (const line of lines.slice(1)) {
      // every column starts where its heading does: after a blank, with a non-blank
      for (const at of cols.slice(1)) {
        expect(line[at - 1], `${JSON.stringify(line)} at ${at}`).toBe(' ');
        expect(line[at], `${JSON.stringify(line)} at ${at}`).not.toBe(' ');
      }
    }
    expect(heading).toMatch(/^\s*seq\s+committed_at\s+tenant\s+table\s+op\s+pk\s+changed\s+db_user\s+application_name\s+client_addr\s+actor\s+origin$/);
    const update = lines[2]!;
    expect(update).toMatch(/ update /);
    expect(update).toContain('…'); // the long list of changed columns is cut, not spilled
    expect(update).toMatch(/pos-caja-3\s+(127\.0\.0\.1|::1|local)\s/);
  });

  it('audit --tenant lists what that tenant received: truncates, and rows moved away (old_tenant)', async () => {
    await db.query(`update ventas set idnegocio = 2 where id = 1`);
    await db.query(`truncate ventas`);
    await db.tick();
    const tenant1 = (await cli(['audit', '--json', '--tenant', '1', '--limit', '2'])).out.trim().split('\n').map((l) => JSON.parse(l));
    expect(tenant1.map((e) => e.op)).toEqual(['update', 'truncate']);
    // the row moved to tenant 2: tenant 1 received it as a delete
    expect(tenant1[0]).toMatchObject({ op: 'update', tenant: '2', pk: { id: 1 } });
  });

  it('watched lists every streamed column with its type', async () => {
    const out = await cli(['watched']);
    expect(out.code).toBe(0);
    const [heading, row] = out.out.trimEnd().split('\n');
    expect(heading).toMatch(/^table\s+tenant_column\s+key\s+excluded\s+capturing\s+rules\s+columns$/);
    expect(row).toMatch(/^public\.ventas\s+idnegocio\s+id\s+-\s+yes\s+-\s+id integer, idnegocio integer, total numeric\(10,2\), /);
  });
});
