// Keeps an app's own TanStack Query caches (lists and details it fetched from its API) current: patches rows by primary key, invalidates what it cannot patch.
import { notifyManager, type QueryClient, type QueryKey } from '@tanstack/query-core';
import { deleteRows, patchList, updateRows, upsertRows, type RowsPatch } from './cache-patch.js';
import type { Row } from './shared/protocol.js';
import type { RelayClient } from './relay-client.js';
import type { TableName, TableRow } from './table-row.js';

/** How one table's rows sit in the cache. */
export interface TableSync<R = Row> {
  /** Primary key columns. Default `['id']`. */
  primaryKey?: string[];
  /** Prefix of every list query of the table (`['orders', 'list']` matches `['orders', 'list', {page: 2}]`). */
  lists: QueryKey;
  /** The detail query of one row. Default: none. Its prefix (the elements before the first one built from the key) is what a whole-table invalidation also hits. */
  detail?: (pk: Partial<R>) => QueryKey;
  /** `invalidate` refetches the lists (the app knows where a new row belongs); `append` adds it to lists that are plain arrays. Default `invalidate`. */
  onInsert?: 'invalidate' | 'append';
}

export type SyncTables<DB> = { [T in TableName<DB>]?: TableSync<TableRow<DB, T>> };

type Rec = Record<string, unknown>;
// Keys compare with numbers as strings, like primary keys: ['orders', 'detail', 5] is the detail of pk {id: "5"}.
// Never cancel a fetch in flight (TanStack's default): a steady stream of inserts would restart it forever while the
// abandoned requests keep running on the server. A fetch in flight is followed by one more instead (see `again`).
const keep = { cancelRefetch: false };
const norm = (k: QueryKey) => JSON.stringify(k, (_, v) => (typeof v == 'number' || typeof v == 'bigint' ? String(v) : v));

/**
 * Follows each table live and, per transaction inside one `notifyManager.batch`: update merges the row into
 * every list under `lists` and into its detail; delete removes it from lists and removes the detail query;
 * insert invalidates the lists (or appends, see `onInsert`); truncate, reset and any data shape it cannot patch
 * invalidate the whole table (lists and details). Returns the function that stops it.
 */
export function syncQueryClient<DB>(client: RelayClient<DB>, queryClient: QueryClient, tables: SyncTables<DB>): () => void {
  const again = new Set<object>();
  const subs = Object.entries(tables as Record<string, TableSync>).map(([table, t]) => {
    const cols = t.primaryKey ?? ['id'];
    const detailKey = t.detail && ((pk: Rec) => norm(t.detail!(pk as any)));
    // The detail prefix: where two keys built from different primary keys part (survives Number(pk.id) and the like).
    const probe = (v: string) => t.detail?.(Object.fromEntries(cols.map((c) => [c, v])));
    const [p1, p2] = [probe('1'), probe('2')];
    const detailPrefix = p1?.slice(0, p1.findIndex((e, i) => norm([e]) != norm([p2![i]])));
    const invalidate = (all: boolean) => {
      void queryClient.invalidateQueries({ queryKey: t.lists }, keep);
      if (all && detailPrefix?.length) void queryClient.invalidateQueries({ queryKey: detailPrefix }, keep);
    };
    return client.subscribe(table as TableName<DB>, {}, {
      onReset: () => notifyManager.batch(() => invalidate(true)),
      onTransaction: (tx) =>
        notifyManager.batch(() => {
          // 0: nothing to refetch, 1: the lists, 2: the whole table. Collected so a bulk insert invalidates once.
          let level = 0;
          const lists = (f: RowsPatch) =>
            queryClient.setQueriesData({ queryKey: t.lists }, (d: unknown) => {
              const out = patchList(d, f);
              if (out === null) level = 2;
              return out ?? undefined;
            });
          for (const c of tx.changes) {
            const pk = (c.pk ?? {}) as Rec;
            const row = c.row as Rec;
            const key = detailKey?.(pk);
            const detail = key && { predicate: (q: { queryKey: QueryKey }) => norm(q.queryKey) == key };
            if (c.op == 'truncate') level = 2;
            else if (c.op == 'insert') {
              if (t.onInsert != 'append') level ||= 1;
              else
                queryClient.setQueriesData({ queryKey: t.lists }, (d: unknown) =>
                  Array.isArray(d) ? upsertRows(pk, row, cols)(d) : (d !== undefined && (level = 2), undefined),
                );
            } else if (c.op == 'update') {
              lists(updateRows(pk, row, cols));
              if (detail)
                queryClient.setQueriesData(detail, (d: unknown) =>
                  d === undefined ? d : Array.isArray(d) || !updateRows(pk, row, cols)([d]) ? ((level = 2), undefined) : { ...(d as Rec), ...row },
                );
            } else {
              lists(deleteRows(pk, cols));
              if (detail) queryClient.removeQueries(detail);
            }
          }
          // A fetch in flight answers with data read before this transaction and would overwrite the patch:
          // once it lands, fetch again (once per fetch, however many transactions arrive meanwhile).
          for (const queryKey of [t.lists, detailPrefix])
            if (queryKey?.length)
              for (const q of queryClient.getQueryCache().findAll({ queryKey, fetchStatus: 'fetching' }))
                if (!again.has(q)) {
                  again.add(q);
                  q.fetch().catch(() => 0).finally(() => (again.delete(q), queryClient.invalidateQueries({ queryKey: q.queryKey, exact: true }, keep)));
                }
          if (level) invalidate(level > 1);
        }),
    });
  });
  return () => subs.forEach((s) => s.unsubscribe());
}
