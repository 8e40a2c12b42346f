// What both baselines share: their environment, and one pg-listen session that hands them each change of `orders` (the row trigger of orders-notify.sql).
import pgListen from 'pg-listen';

/** The trigger's payload: `{op, row}`. */
export interface OrderNotification {
  op: 'INSERT' | 'UPDATE' | 'DELETE';
  row: { tenant_id: string } & Record<string, unknown>;
}

/** The event each baseline emits for an operation. */
export const events = { INSERT: 'order:created', UPDATE: 'order:updated', DELETE: 'order:deleted' } as const;

/** Env: DATABASE_URL, PORT (default 3000), HOST (default 127.0.0.1), JWT_SECRET (≥ 32 characters). */
export function baselineEnv(): { databaseUrl: string; secret: Uint8Array; port: number; host: string } {
  const required = (name: string): string => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is required.`);
    return v;
  };
  return {
    databaseUrl: required('DATABASE_URL'),
    secret: new TextEncoder().encode(required('JWT_SECRET')),
    port: Number(process.env.PORT ?? 3000),
    host: process.env.HOST ?? '127.0.0.1',
  };
}

/** LISTENs on `orders_changes` with one pg-listen session; a lost session ends the process, as the benchmarks expect. */
export async function listenToOrders(databaseUrl: string, onChange: (n: OrderNotification) => void): Promise<{ close(): Promise<void> }> {
  // pg-listen is CommonJS with `exports.default`.
  const subscriber = pgListen.default<{ orders_changes: OrderNotification }>({ connectionString: databaseUrl });
  subscriber.notifications.on('orders_changes', onChange);
  subscriber.events.on('error', (err) => {
    console.error(JSON.stringify({ level: 'error', msg: 'LISTEN session lost', err: err.message }));
    process.exit(1);
  });
  await subscriber.connect();
  await subscriber.listenTo('orders_changes');
  return { close: () => subscriber.close() };
}
