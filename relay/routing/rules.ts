// Access rules (relay.allow): what a token's role sees of a table, compiled once per (table, role, claim values) into the filter machinery.
import type { Filter, Json } from '../../client/shared/protocol.js';
import type { WatchedRule } from '../../db/schema.js';
import type { Principal } from './auth.js';
import { compileFilter, FilterError, type CompiledFilter } from './filter.js';
import type { WatchedTable } from '../feed/watched-tables.js';

/** The token may not subscribe to the table under its rules (no rule for its role, a claim the rule needs is missing…): `table_not_allowed`. */
export class RuleError extends Error {}

/** What one principal sees of a table with rules: rows matching `filter`, columns `columns`. */
export interface RuleView {
  /** Equal for principals that see the same rows and columns. */
  readonly key: string;
  readonly role: string;
  /** The rule's row condition with the token's claim values in place; null: every row of the tenant. */
  readonly filter: CompiledFilter | null;
  /** Visible columns in table column order (the key columns always among them); null: every streamed column. */
  readonly columns: readonly string[] | null;
}

/** Compiled views by table object (a reload of the watched tables starts afresh), then by role and claim values. */
const views = new WeakMap<WatchedTable, Map<string, RuleView>>();
/** Beyond this many views of one table the cache starts over (a bound, not an expected size: one per user of a per-user rule). */
const MAX_VIEWS = 50_000;

const isClaimRef = (v: unknown): v is { claim: string } =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && typeof (v as { claim?: unknown }).claim === 'string';

/** The claims a rule's row condition names, in a stable order. */
function claimsOf(rule: WatchedRule): string[] {
  const names = new Set<string>();
  for (const ops of Object.values(rule.rows ?? {})) {
    for (const v of Object.values(ops ?? {})) if (isClaimRef(v)) names.add(v.claim);
  }
  return [...names].sort();
}

/**
 * What `principal` sees of `table`: null when the table has no rules (its whole tenant, as without rules); else the view of
 * the principal's role, compiled once per (role, claim values). Throws RuleError when the token may not subscribe.
 */
export function ruleViewFor(table: WatchedTable, principal: Principal): RuleView | null {
  if (table.rules.size === 0) return null;
  const role = principal.role ?? null;
  const claims = principal.claims ?? {};
  const rule = role === null ? undefined : table.rules.get(role);
  if (role === null) throw new RuleError(`${table.name} is open only to the roles its rules name, and your token has no role claim`);
  if (!rule) throw new RuleError(`your role ${JSON.stringify(role)} has no rule on ${table.name}, so it may not subscribe to it`);
  const names = claimsOf(rule);
  const values = names.map((name) => {
    const v = Object.hasOwn(claims, name) ? claims[name] : undefined;
    if (v === undefined || v === null) throw new RuleError(`the rule for role ${JSON.stringify(role)} on ${table.name} needs the claim ${name}, which your token does not have`);
    return v;
  });
  const cacheKey = JSON.stringify([role, values]);
  let perTable = views.get(table);
  if (!perTable) views.set(table, (perTable = new Map()));
  let view = perTable.get(cacheKey);
  if (!view) {
    view = compileRule(table, rule, new Map(names.map((n, i) => [n, values[i]])));
    if (perTable.size >= MAX_VIEWS) perTable.clear();
    perTable.set(cacheKey, view);
  }
  return view;
}

function compileRule(table: WatchedTable, rule: WatchedRule, claims: ReadonlyMap<string, unknown>): RuleView {
  const resolved: Record<string, Record<string, Json>> = {};
  for (const [column, ops] of Object.entries(rule.rows ?? {})) {
    const out: Record<string, Json> = {};
    for (const [op, v] of Object.entries(ops ?? {})) {
      if (!isClaimRef(v)) {
        out[op] = v as Json;
        continue;
      }
      const value = claims.get(v.claim);
      const scalar = (x: unknown) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean';
      const ok = op === 'in' ? Array.isArray(value) && value.every(scalar) : scalar(value);
      if (!ok) {
        throw new RuleError(`the rule for role ${JSON.stringify(rule.role)} on ${table.name} compares ${column} with your claim ${v.claim}, which must be ${op === 'in' ? 'an array of strings or numbers' : 'a string, number or boolean'}`);
      }
      out[op] = value as Json;
    }
    resolved[column] = out;
  }
  let filter: CompiledFilter | null;
  try {
    filter = compileFilter(table, resolved as Filter);
  } catch (err) {
    // a claim value the column's type cannot hold, or a rule naming a column that was since renamed or excluded: fail closed
    if (err instanceof FilterError) throw new RuleError(`the rule for role ${JSON.stringify(rule.role)} on ${table.name} cannot apply to your token: ${err.message}`);
    throw err;
  }
  const wanted = rule.columns === null ? null : new Set([...rule.columns, ...table.primaryKey]);
  const columns = wanted === null ? null : [...table.columns.keys()].filter((c) => wanted.has(c));
  return { key: JSON.stringify([rule.role, filter?.key ?? null, columns]), role: rule.role, filter, columns };
}

/**
 * A subscription's filter under its rule: the rule's condition AND the client's filter, seeing only the rule's columns. Its
 * `key` is what relay.snapshot takes (`[rule, filter]` when both apply). A client filter on a column the role does not see
 * is refused (FilterError, `bad_filter`).
 */
export function withRule(view: RuleView | null, table: WatchedTable, clientFilter: Filter | undefined | null): CompiledFilter | null {
  if (view?.columns && clientFilter && typeof clientFilter === 'object' && !Array.isArray(clientFilter)) {
    for (const column of Object.keys(clientFilter)) {
      if (table.columns.has(column) && !view.columns.includes(column)) {
        throw new FilterError(`cannot filter on column "${column}" of ${table.name}: your role does not see it`);
      }
    }
  }
  const client = compileFilter(table, clientFilter);
  if (!view) return client;
  const rule = view.filter;
  const columns = view.columns ?? undefined;
  if (rule && client) {
    return { key: `[${rule.key},${client.key}]`, test: (row) => rule.test(row) && client.test(row), columns };
  }
  const one = rule ?? client;
  if (!one && !columns) return null;
  // a rule with no row condition still goes through the filter path: it masks columns
  return one ? { ...one, columns } : { key: 'null', test: () => true, columns };
}
