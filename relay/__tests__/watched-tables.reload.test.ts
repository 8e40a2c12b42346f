// WatchedTables.reload: a reload asked for while a read is running is not answered by that read (pure logic: the read is
// held open by the test; the relay's own reads are covered against Postgres by rules.property and the watch tests).
import { describe, expect, it } from 'vitest';
import type { RelayDb } from '../../db/kysely.js';
import type { RelayWatched } from '../../db/schema.js';
import { WatchedTables } from '../feed/watched-tables.js';

function watched(table: string, roles: string[]): RelayWatched {
  return {
    schema_name: 'public', table_name: table, table: `public.${table}`, tenant_column: 'tenant_id', primary_key: ['id'], key_source: 'primary key',
    exclude_columns: [], numeric_columns: [], columns: [{ name: 'id', type: 'integer', base: 'integer' }], watched_at: new Date(0), capturing: true,
    relid: 1, rules: roles.map((role) => ({ role, rows: null, columns: null })),
  } as unknown as RelayWatched;
}

describe('WatchedTables.reload', () => {
  it('a call during a read reads again after it, and calls meanwhile share that second read', async () => {
    const reads: Array<(rows: RelayWatched[]) => void> = [];
    const tables = new WatchedTables(undefined as unknown as RelayDb, () => new Promise((resolve) => reads.push(resolve)));
    const first = tables.reload();
    // the rules change and commit while the first read runs (it may have started before): the notification asks again
    const second = tables.reload();
    const third = tables.reload();
    expect(reads).toHaveLength(1);
    reads[0]!([watched('orders', ['old'])]);
    await first;
    // the second read starts once the first is done, and reads what committed meanwhile
    await new Promise((r) => setImmediate(r));
    expect(reads).toHaveLength(2);
    reads[1]!([watched('orders', ['new'])]);
    await Promise.all([second, third]);
    expect([...tables.get('public.orders')!.rules.keys()]).toEqual(['new']);
    expect(reads).toHaveLength(2);
  });

  it('a call with no read running reads once', async () => {
    let count = 0;
    const tables = new WatchedTables(undefined as unknown as RelayDb, async () => {
      count++;
      return [watched('orders', [])];
    });
    await tables.reload();
    await tables.reload();
    expect(count).toBe(2);
    expect(tables.names()).toEqual(['public.orders']);
  });
});
