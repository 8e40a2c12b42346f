// The orders table most tests stream (and any other table of a tenant), created and watched in one call in the shape each
// test needs, and the writers that keep committing to it while a test kills relays, fuzzes frames or storms the server.
import type pg from 'pg';
import { sleep } from './wait.js';

/** What runs SQL: a TestDatabase, a pg.Client or a pool. */
export interface Sql {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

/**
 * The columns of the example's orders (examples/dashboard/schema.sql) after `id bigserial` and `tenant_id`: what the
 * dashboard, the console and the client's end-to-end tests show. Spread it to add or leave out a column.
 */
export const EXAMPLE_COLUMNS = {
  customer: 'text not null',
  total: 'numeric(10, 2) not null',
  status: "text not null default 'open'",
  created_at: 'timestamptz not null default now()',
} as const satisfies Readonly<Record<string, string>>;

/** The shape of a tenant's table: see {@link createTenantTable}. */
export interface TableShape {
  /** The type of `id`. Default `serial primary key` (`bigserial primary key` where the test reads int8 as strings). */
  id?: string;
  /** Columns after `id` and `tenant_id text not null`, name → type, in this order. Default none. */
  columns?: Readonly<Record<string, string>>;
  /** Columns relay.watch leaves out of every frame (its third argument). */
  excluded?: readonly string[];
  /** Watch it by tenant_id. Default true. */
  watch?: boolean;
}

/** The SQL of {@link createTenantTable}. */
export function tenantTableSql(table: string, { id = 'serial primary key', columns = {}, excluded, watch = true }: TableShape = {}): string {
  const create = `create table ${table} (${[`id ${id}`, 'tenant_id text not null', ...Object.entries(columns).map(([name, type]) => `${name} ${type}`)].join(', ')})`;
  if (!watch) return create;
  return `${create}; select relay.watch('${table}', 'tenant_id'${excluded ? `, '{${excluded.join(',')}}'` : ''})`;
}

/** Creates `table (id, tenant_id, …columns)` and watches it by tenant_id: `createTenantTable(db, 'notes', { columns: { body: 'text' } })`. */
export async function createTenantTable(db: Sql, table: string, shape: TableShape = {}): Promise<void> {
  await db.query(tenantTableSql(table, shape));
}

/** Creates `orders (id, tenant_id, …columns)` and watches it by tenant_id: `createOrders(db, { columns: { n: 'int' } })`. */
export async function createOrders(db: Sql, shape: TableShape = {}): Promise<void> {
  await createTenantTable(db, 'orders', shape);
}

/** Inserts one row into orders (its own transaction unless `db` is in one): `insertOrder(c, { tenant_id: 'a', n: 1 })`. */
export async function insertOrder(db: Sql, row: Readonly<Record<string, unknown>>): Promise<void> {
  const names = Object.keys(row);
  await db.query(`insert into orders (${names.join(', ')}) values (${names.map((_, i) => `$${i + 1}`).join(', ')})`, Object.values(row));
}

/** A writer that keeps committing: see {@link keepWriting}. */
export interface Writer {
  /** How many writes have returned so far. */
  readonly written: number;
  /** Settles when the writer ends: after stop(), or rejected with the error of a write that failed. */
  readonly ended: Promise<number>;
  /** Stops after the write in progress and ends its connection; resolves with how many writes returned. */
  stop(): Promise<number>;
}

/**
 * Calls `write(c, n)` for n = 0, 1, 2 … on a connection of its own, `pauseMs` apart (default none), until `stop()`; each
 * call commits on its own unless it opens a transaction. A write that fails ends the writer (`ended` and `stop()` reject).
 */
export function keepWriting(db: { connect(): Promise<pg.Client> }, write: (c: pg.Client, n: number) => Promise<unknown>, options: { pauseMs?: number } = {}): Writer {
  let running = true;
  let written = 0;
  const ended = (async () => {
    const c = await db.connect();
    try {
      while (running) {
        await write(c, written);
        written++;
        if (options.pauseMs) await sleep(options.pauseMs);
      }
      return written;
    } finally {
      await c.end();
    }
  })();
  ended.catch(() => undefined); // reported by stop(), or by whoever awaits `ended`
  return {
    get written() {
      return written;
    },
    ended,
    stop() {
      running = false;
      return ended;
    },
  };
}

/** {@link keepWriting} of single-row orders `(tenant_id, n)`, the tenant of the n-th one from `tenantOf`. */
export function writeOrders(db: { connect(): Promise<pg.Client> }, tenantOf: (n: number) => string, options: { pauseMs?: number } = {}): Writer {
  return keepWriting(db, (c, n) => insertOrder(c, { tenant_id: tenantOf(n), n }), options);
}
