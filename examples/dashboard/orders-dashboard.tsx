// The page: one tenant's orders, live from the relay, the revenue they add up to, the connection's status, and who else is looking.
import { useQuery } from '@tanstack/react-query';
import type { RelayClient, Status } from 'pgrelay/client';
import { usePresence, useRelayStatus } from 'pgrelay/client/react';
import { liveQueryOptions } from 'pgrelay/client/tanstack';
import type { DB } from './db.js';

const badgeColors: Record<Status, string> = { connecting: '#b7791f', open: '#2f855a', reconnecting: '#c05621', closed: '#c53030' };
const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });

/** Who is looking at the tenant's orders: presence of the token's tenant, each member once however many tabs it has open. */
function Viewers({ client }: { client: RelayClient<DB> }) {
  const members = usePresence(client);
  if (members.length === 0) return null;
  return (
    <p className="viewers">
      Looking at these orders: <span id="viewers">{members.map((m) => m.name ?? m.sub).join(', ')}</span>
    </p>
  );
}

/** `viewers`: show who else is looking (the token must carry a `sub`: presence names members by it). */
export function OrdersDashboard({ client, viewers = false }: { client: RelayClient<DB>; viewers?: boolean }) {
  const status = useRelayStatus(client);
  // No API of our own: the query's data is the relay's snapshot of the table, then every committed change.
  const orders = useQuery(liveQueryOptions(client, 'public.orders'));
  const rows = [...(orders.data ?? [])].sort((a, b) => Number(b.id) - Number(a.id));
  // numeric arrives as a string: add whole cents so the total has no floating-point drift.
  const revenueCents = rows.filter((o) => o.status !== 'cancelled').reduce((sum, o) => sum + Math.round(Number(o.total) * 100), 0);

  return (
    <main>
      <header>
        <h1>Orders</h1>
        <span className="badge" data-status={status} style={{ background: badgeColors[status] }}>
          {status}
        </span>
      </header>
      {/* A refused token closes the client (a static one) or keeps it retrying (a token function): either way, say why instead of "Loading…". */}
      {status !== 'open' && client.lastError && <p className="error" role="alert">{client.lastError.message}</p>}
      {viewers && <Viewers client={client} />}
      <section className="revenue">
        <span>Revenue</span>
        <strong id="revenue">{money.format(revenueCents / 100)}</strong>
        <small>
          {rows.length} orders; cancelled ones are not counted
        </small>
      </section>
      {orders.error ? (
        <p className="error">{orders.error.message}</p>
      ) : orders.isPending ? (
        status === 'closed' ? null : <p>Loading…</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>#</th>
              <th>Customer</th>
              <th className="num">Total</th>
              <th>Status</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((o) => (
              <tr key={o.id} data-id={o.id}>
                <td>{o.id}</td>
                <td>{o.customer}</td>
                <td className="num">{money.format(Number(o.total))}</td>
                <td>
                  <span className={`status ${o.status}`}>{o.status}</span>
                </td>
                <td>{new Date(o.created_at).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
