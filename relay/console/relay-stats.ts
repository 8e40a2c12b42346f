// The relay's load for the console's GET /api/stats: connections and subscriptions per tenant and table.
import type { RelaySocket as WS } from '../routing/socket-data.js';
import type { RelayStats, TenantLoad } from './http-routes.js';

/** Connections and subscriptions per tenant and table, busiest tenants first (one pass over the sockets). */
export function relayStats(sockets: ReadonlySet<WS>, position: number): RelayStats {
  const byTenant = new Map<string, TenantLoad & { perTable: Map<string, number> }>();
  let subscriptions = 0;
  for (const ws of sockets) {
    const d = ws.data;
    const key = d.principal.allTenants ? '*' : d.principal.tenant!;
    let t = byTenant.get(key);
    if (!t) byTenant.set(key, (t = { tenant: key, connections: 0, subscriptions: 0, tables: [], perTable: new Map() }));
    t.connections++;
    for (const sub of d.subs?.values() ?? []) {
      t.subscriptions++;
      subscriptions++;
      t.perTable.set(sub.route.table, (t.perTable.get(sub.route.table) ?? 0) + 1);
    }
  }
  const tenants = [...byTenant.values()]
    .sort((a, b) => b.connections - a.connections || b.subscriptions - a.subscriptions)
    .slice(0, 200)
    .map(({ perTable, ...t }) => ({ ...t, tables: [...perTable].map(([table, n]) => ({ table, subscriptions: n })).sort((a, b) => b.subscriptions - a.subscriptions) }));
  return { position, connections: sockets.size, subscriptions, tenants };
}
