// Per-file databases: clones of the migrated template that do not see each other.
import { describe, expect, inject, it } from 'vitest';
import { createTestDatabase, useTestDatabase } from '../database.js';

const db = useTestDatabase();

describe('per-file databases', () => {
  it('are clones of the migrated template', async () => {
    const { rows } = await db.query<{ n: string }>(`select count(*) as n from relay.migrations`);
    expect(Number(rows[0]!.n)).toBeGreaterThan(0);
    const { rows: cur } = await db.query<{ d: string }>('select current_database() as d');
    expect(cur[0]!.d).toBe(db.name);
    expect(db.name).not.toBe(inject('pgTemplate'));
  });

  it('do not see each other', async () => {
    await db.query('create table only_here(id int)');
    const other = await createTestDatabase();
    try {
      const { rows } = await other.query(`select to_regclass('public.only_here') as t`);
      expect(rows[0]!.t).toBeNull();
    } finally {
      await other.drop();
    }
    const { rows } = await db.query(`select to_regclass('public.only_here')::text as t`);
    expect(rows[0]!.t).toBe('only_here');
  });
});
