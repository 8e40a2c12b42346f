// What a `subscribe` message would receive, or why it is refused: the checks that need no database.
import { qualifyTable, type ErrorCode, type SubscribeMessage } from '../../client/shared/protocol.js';
import type { WatchedTables } from '../feed/watched-tables.js';
import type { Principal } from './auth.js';
import { FilterError } from './filter.js';
import { ALL_TENANTS, type Route } from './router.js';
import { RuleError, ruleViewFor, withRule } from './rules.js';

/** A subscription that may be served: its route, and the access rule view it is compiled with. */
export interface SubscriptionPlan {
  route: Route;
  rule: string | undefined;
}

/** Why a subscription is refused: the error frame's code and sentence. */
export interface SubscriptionRefusal {
  code: ErrorCode;
  message: string;
}

/**
 * What a `subscribe` message from `p` would receive (its route, and the access rule view it is compiled with), or why
 * it is refused: the checks that need no database (a table it may see, a filter that compiles).
 */
export function planSubscription(tables: WatchedTables, p: Principal, msg: SubscribeMessage): SubscriptionPlan | SubscriptionRefusal {
  const name = qualifyTable(msg.table);
  const table = tables.get(name);
  if (!table) return { code: 'unknown_table', message: `table ${name} is not watched: check the name, or have it captured with pgrelay watch ${name} --tenant-column <column>` };
  if (p.tables && !p.tables.has(name)) return { code: 'table_not_allowed', message: `your token does not allow table ${name}` };
  if (table.tenantColumn === null && !p.allTenants) return { code: 'table_not_allowed', message: `table ${name} has no tenants: only all-tenant tokens may subscribe to it` };
  let filter;
  let rule;
  try {
    rule = ruleViewFor(table, p);
    filter = withRule(rule, table, msg.filter as never);
  } catch (err) {
    if (err instanceof RuleError) return { code: 'table_not_allowed', message: err.message };
    if (err instanceof FilterError) return { code: 'bad_filter', message: err.message };
    throw err;
  }
  return { route: { table: name, tenantKey: p.allTenants ? ALL_TENANTS : p.tenant!, filter, id: msg.id }, rule: rule?.key };
}
