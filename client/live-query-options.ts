// Query options whose data is a table's relay snapshot and then stays live: dashboards with no API of their own.
import type { Query, QueryFunctionContext, QueryKey } from '@tanstack/query-core';
import { applyChanges } from './cache-patch.js';
import type { RelayClient } from './relay-client.js';
import type { TableFilter, TableName, TableRow } from './table-row.js';

export interface LiveQueryConfig<R> {
  /** Only rows that pass the filter (rows entering or leaving it arrive as inserts and deletes). Default: all rows. */
  filter?: TableFilter<R>;
  /** Columns that identify a row when a change replaces or removes it. Default `['id']`. */
  primaryKey?: string[];
}

interface Live {
  rows?: unknown[];
  first: Promise<unknown[]>;
}

// One live subscription per cached query; a refetch of a live query just returns what it holds.
const lives = new WeakMap<Query<any, any, any, any>, Live>();

/**
 * `{ queryKey: ['pgrelay', table, filter ?? null], queryFn, staleTime: Infinity }`. The query function takes the
 * QueryClient from its context (`context.client`, present in recent v5 releases; tested with 5.108), subscribes with `snapshot: true`, resolves with
 * the rows, then writes every transaction (and the new snapshot after a `reset`) into the query with `setQueryData`.
 * The subscription ends when the query is removed from the cache (garbage collection, `removeQueries`, `clear`).
 */
export function liveQueryOptions<DB, T extends TableName<DB>>(client: RelayClient<DB>, table: T, config: LiveQueryConfig<TableRow<DB, T>> = {}) {
  return {
    queryKey: ['pgrelay', table, config.filter ?? null] as const,
    staleTime: Infinity,
    queryFn: async (ctx: QueryFunctionContext<QueryKey>): Promise<Array<TableRow<DB, T>>> => {
      const qc = ctx.client;
      const key = ctx.queryKey;
      const cache = qc.getQueryCache();
      const query = cache.find({ queryKey: key, exact: true })!;
      const known = lives.get(query);
      if (known) return (known.rows ?? known.first) as Promise<any>;
      let resolve!: (rows: unknown[]) => void;
      let reject!: (e: unknown) => void;
      const live: Live = { first: new Promise((a, b) => ((resolve = a), (reject = b))) };
      let pending = false;
      // While a fetch is running its result will overwrite the cache: hold writes until it has landed.
      const write = () => (query.state.fetchStatus == 'fetching' ? (pending = true) : qc.setQueryData(key, live.rows));
      const sub = client.subscribe(table, { filter: config.filter, snapshot: true }, {
        onSnapshot(rows) {
          const first = !live.rows;
          live.rows = rows;
          if (first) resolve(rows);
          else write();
        },
        onTransaction(tx) {
          if (!live.rows) return;
          live.rows = applyChanges(live.rows, tx.changes, config.primaryKey ?? ['id']);
          write();
        },
        // The subscription cannot go on (its table was unwatched, or a resubscribe was refused): once there are
        // rows, refetch, which subscribes anew and fails the query if that is refused too.
        onError(e) {
          end();
          live.rows ? qc.invalidateQueries({ queryKey: key }) : reject(e);
        },
      });
      const off = cache.subscribe((e) => {
        if (e.query != query) return;
        if (e.type == 'removed') end();
        else if (pending && query.state.fetchStatus != 'fetching') {
          pending = false;
          qc.setQueryData(key, live.rows);
        }
      });
      const end = () => {
        sub.unsubscribe();
        off();
        lives.delete(query);
      };
      lives.set(query, live);
      return live.first as Promise<any>;
    },
  };
}
