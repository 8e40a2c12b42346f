// Exact accounting: each subscription's applied transactions against the ones relay.changes says it should have.
import type pg from 'pg';
import { compileFilter } from '../../../relay/routing/filter.js';
import type { WatchedTable } from '../../../relay/feed/watched-tables.js';
import type { Recording } from './subscribers.js';

export interface Tally {
  lost: number;
  duplicated: number;
  reordered: number;
  /** Transactions applied with a different number of changes than expected. */
  corrupted: number;
  /** Changes of another tenant applied by a tenant-scoped subscription. */
  crossTenant: number;
  /** Snapshot subscriptions whose snapshot + stream differs from the table at the end. */
  stateMismatches: number;
  expectedTransactions: number;
}

export const emptyTally = (): Tally => ({ lost: 0, duplicated: 0, reordered: 0, corrupted: 0, crossTenant: 0, stateMismatches: 0, expectedTransactions: 0 });

interface LogChange { seq: number; tenant: string | null; old_tenant: string | null; op: string; row: Record<string, unknown> | null; old: Record<string, unknown> | null; pk: Record<string, unknown> | null }

/** The changes of the log the subscription should receive after `base`, by seq, with the relay's filter rules. */
export async function expectedFor(db: pg.ClientBase, rec: Recording, table: WatchedTable, base: number, upTo: number): Promise<Map<number, LogChange[]>> {
  const [schema, name] = rec.spec.table.split('.');
  const { rows } = await db.query<LogChange & { seq: string }>(
    // rows only when the filter needs them: a long run's log holds gigabytes of oversize rows
    `select t.seq::text as seq, c.tenant, c.old_tenant, c.op, ${rec.spec.filter ? 'c.row, c.old' : 'null::jsonb as row, null::jsonb as old'}, c.pk from relay.changes c join relay.transactions t using (txid)
     where c.schema_name = $1 and c.table_name = $2 and t.seq > $3 and t.seq <= $4 order by t.seq, c.id`,
    [schema, name, base, upTo],
  );
  const filter = compileFilter(table, rec.spec.filter ?? null);
  const out = new Map<number, LogChange[]>();
  for (const r of rows) {
    const before = { ...r.row!, ...(r.old ?? {}) };
    const moved = r.op === 'update' && r.old_tenant !== null && r.old_tenant !== r.tenant;
    let keep = true;
    if (rec.spec.tenant !== null && r.op !== 'truncate') {
      // a tenant sees a row that moved in as an insert, one that moved out as a delete of the old row
      if (moved && r.tenant === rec.spec.tenant) keep = !filter || filter.test(r.row!);
      else if (moved && r.old_tenant === rec.spec.tenant) keep = !filter || filter.test(before);
      else if (r.tenant !== rec.spec.tenant) continue;
      else if (filter) keep = r.op === 'update' ? filter.test(r.row!) || filter.test(before) : filter.test(r.row!);
    } else if (filter && r.op !== 'truncate') {
      keep = r.op === 'update' ? filter.test(r.row!) || filter.test(before) : filter.test(r.row!);
    }
    if (!keep) continue;
    const seq = Number(r.seq);
    out.set(seq, [...(out.get(seq) ?? []), { ...r, seq }]);
  }
  return out;
}

/** Compares one recording with the log and adds its counts to `tally`; returns a line on what it lost, if anything. */
export async function account(db: pg.ClientBase, rec: Recording, table: WatchedTable, upTo: number, tally: Tally): Promise<string | undefined> {
  const base = rec.spec.snapshot ? rec.snapshot?.seq : rec.start;
  if (base === undefined) return undefined;
  const expected = await expectedFor(db, rec, table, base, upTo);
  tally.expectedTransactions += expected.size;
  const applied = rec.applied.filter((a) => a.seq > base);
  const seen = new Map<number, number>();
  let last = -1;
  for (const a of applied) {
    seen.set(a.seq, (seen.get(a.seq) ?? 0) + 1);
    if (a.seq < last) tally.reordered++;
    last = Math.max(last, a.seq);
    const want = expected.get(a.seq);
    if (want && want.length !== a.count) tally.corrupted++;
    tally.crossTenant += a.foreign;
  }
  for (const [, n] of seen) if (n > 1) tally.duplicated += n - 1;
  const lost = [...expected.keys()].filter((seq) => !seen.has(seq));
  tally.lost += lost.length;
  if (lost.length === 0) return undefined;
  // contiguous runs of lost seqs (in the expected order) say whether a tail, a gap at a fault, or scattered changes went missing
  const runs: string[] = [];
  const order = [...expected.keys()];
  for (let i = 0; i < order.length; i++) {
    if (seen.has(order[i]!)) continue;
    let j = i;
    while (j + 1 < order.length && !seen.has(order[j + 1]!)) j++;
    runs.push(i === j ? `${order[i]}` : `${order[i]}–${order[j]} (${j - i + 1})`);
    i = j;
  }
  const spec = `${rec.spec.table} tenant ${rec.spec.tenant ?? 'all'}${rec.spec.filter ? ` filter ${JSON.stringify(rec.spec.filter)}` : ''}${rec.spec.snapshot ? ' snapshot' : ''}`;
  return `lost ${lost.length} of ${expected.size} on ${spec}: base ${base}, cursor ${rec.handle.cursor ?? '-'}, last applied ${rec.applied.at(-1)?.seq ?? '-'}, up to ${upTo}; missing ${runs.slice(0, 8).join(', ')}${runs.length > 8 ? ` … ${runs.length} runs` : ''}`;
}

/** A snapshot subscription's rows after applying its stream must equal the table now (same tenant and filter). */
export async function checkState(db: pg.ClientBase, rec: Recording, pk: readonly string[], tally: Tally): Promise<void> {
  if (!rec.spec.snapshot || !rec.snapshot) return;
  const key = (r: Record<string, unknown>) => JSON.stringify(pk.map((k) => r[k]));
  const state = new Map(rec.snapshot.rows.map((r) => [key(r), r]));
  for (const a of rec.applied.filter((x) => x.seq > rec.snapshot!.seq)) {
    for (const c of a.changes ?? []) {
      if (c.op === 'truncate') state.clear();
      else if (c.op === 'delete') state.delete(key(c.row!));
      else state.set(key(c.row!), c.row!);
    }
  }
  const { rows } = await db.query<{ row: Record<string, unknown> }>(
    `select row from relay.snapshot($1::regclass, $2, $3::jsonb)`,
    [rec.spec.table, rec.spec.tenant, rec.spec.filter ? JSON.stringify(rec.spec.filter) : null],
  );
  const fresh = new Map(rows.map((r) => [key(r.row), r.row]));
  // rows arrive in table column order, relay.snapshot's jsonb in its own key order: compare values, not key order
  const canonical = (r: Record<string, unknown> | undefined) => (r ? JSON.stringify(Object.keys(r).sort().map((k) => [k, r[k]])) : '');
  const same = fresh.size === state.size && [...fresh].every(([k, v]) => canonical(state.get(k)) === canonical(v));
  if (!same) tally.stateMismatches++;
}
