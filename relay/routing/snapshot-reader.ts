// A subscription's snapshot: the current rows in pages, read in one REPEATABLE READ snapshot, and that snapshot's position.
import type pg from 'pg';
import { SafeCursor } from '../../db/kysely.js';
import { SqlState } from '../../db/sqlstate.js';
import { snapshotRowJson } from '../feed/column-order.js';
import type { WatchedTables } from '../feed/watched-tables.js';
import { snapshotFrame } from './frames.js';
import type { RelaySocket as WS, Subscription } from './socket-data.js';
import type { SocketWriter } from './socket-writer.js';

/** What {@link readSnapshot} needs from the relay. */
export interface SnapshotReaderOptions {
  pool: pg.Pool;
  tables: WatchedTables;
  io: SocketWriter;
  /** The largest frame: a snapshot page holds as many rows as fit. */
  maxFrame: number;
  /** Past half of it buffered, reading waits for the socket to drain to a quarter. */
  maxBackpressure: number;
}

/** Rows read from the cursor at a time. */
const SNAPSHOT_BATCH = 500;

/**
 * Sends the current rows in pages, read in one REPEATABLE READ snapshot; returns that snapshot's position. A TRUNCATE
 * that committed after the ticker's last tick cannot be read back (PR011): the next tick numbers it, so try again.
 */
export async function readSnapshot(ws: WS, sub: Subscription, o: SnapshotReaderOptions): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await readSnapshotOnce(ws, sub, o);
    } catch (err) {
      if ((err as { code?: string }).code !== SqlState.SnapshotRetry || attempt >= 100 || sub.cancelled) throw err;
      await new Promise((r) => setTimeout(r, 10 + 10 * Math.min(attempt, 9)));
    }
  }
}

async function readSnapshotOnce(ws: WS, sub: Subscription, o: SnapshotReaderOptions): Promise<number> {
  const { route } = sub;
  const d = ws.data;
  const client = await o.pool.connect();
  try {
    await client.query('begin isolation level repeatable read read only');
    const tenant = route.tenantKey;
    const table = o.tables.get(route.table);
    // the canonical filter is the same JSON object relay.snapshot takes
    const filter = route.filter?.key ?? null;
    // by oid: a name would need USAGE on the table's schema, which the relay's role has no need of (null: unwatched meanwhile)
    const cursor = client.query(new SafeCursor<{ seq: string; row: string }>(
      'select seq::text as seq, row::text as row from relay.snapshot($1::oid::regclass, $2, $3::jsonb)',
      [table?.relid ?? null, tenant, filter],
    ));
    let rows = await cursor.read(SNAPSHOT_BATCH);
    let open = true;
    let position: number;
    if (rows.length > 0) {
      position = Number(rows[0]!.seq);
    } else {
      await cursor.close();
      open = false;
      position = Number((await client.query<{ p: string }>('select relay.position()::text as p')).rows[0]!.p);
    }
    o.io.send(ws, JSON.stringify({ type: 'subscribed', id: route.id, seq: position }));
    let page: string[] = [];
    let size = 0;
    for (;;) {
      if (sub.cancelled || d.closed) break;
      for (const r of rows) {
        const row = snapshotRowJson(r.row, table, route.filter?.columns);
        if (page.length > 0 && size + row.length > o.maxFrame) {
          o.io.send(ws, snapshotFrame(route.id, position, page, true));
          page = [];
          size = 0;
        }
        page.push(row);
        size += row.length + 1;
      }
      if (rows.length < SNAPSHOT_BATCH) break;
      if (ws.bufferedAmount() > o.maxBackpressure / 2) await o.io.drain(ws, o.maxBackpressure / 4);
      rows = await cursor.read(SNAPSHOT_BATCH);
    }
    if (open) await cursor.close();
    o.io.send(ws, snapshotFrame(route.id, position, page, false));
    await client.query('commit');
    client.release();
    return position;
  } catch (err) {
    // a connection that died is not given back to the pool; one that only failed a statement is, rolled back
    const dead = await client.query('rollback').then(() => false, () => true);
    client.release(dead ? (err as Error) : undefined);
    throw err;
  }
}
