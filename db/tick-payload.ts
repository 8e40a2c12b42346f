// NOTIFY relay payloads, as relay.tick writes them: version 2 carries each change's rows as relay.changes renders them
// and its key columns, and the relay derives `pk` and `old` here (Postgres renders values; JSON building is the relay's
// work). Version 1 (pgrelay 0.2's tick, already carrying `pk` and `old`) is read too, for the moment of an upgrade.
import type { LoggedChange } from './log-reader.js';

/** A parsed payload: the transaction with its changes when they travelled inline, else only where to read it from. */
export interface TickPayload {
  seq: number;
  at?: string;
  origin: string | null;
  /** Absent for a reference: the relay reads the transaction from the log. */
  changes?: LoggedChange[];
}

interface ChangeV2 {
  id: number;
  tenant: string | null;
  table: string;
  op: LoggedChange['op'];
  key: string[];
  row: Record<string, unknown> | null;
  old_row: Record<string, unknown> | null;
  old_tenant: string | null;
}

type ChangeV1 = LoggedChange & { old_tenant?: string | null };

interface Raw {
  v: unknown;
  seq: unknown;
  at?: unknown;
  origin?: unknown;
  changes?: unknown;
}

/** The seq at the start of a payload as relay.tick writes it: read without parsing the rest. */
const SEQ_PREFIX = /^\{"v":[12],"seq":(\d{1,15}),/;

/** The payload's seq when it starts as relay.tick writes it (so that a copy already delivered is dropped unparsed). */
export function payloadSeq(raw: string): number | undefined {
  const m = SEQ_PREFIX.exec(raw);
  return m ? Number(m[1]) : undefined;
}

/** Equal as jsonb compares values: numbers by value, objects whatever their key order, arrays in order. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** An update's `old`: the old values of the columns whose value changed (relay.changes' definition). */
export function changedColumns(row: Record<string, unknown> | null, oldRow: Record<string, unknown> | null): Record<string, unknown> {
  const old: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(oldRow ?? {})) {
    if (!row || !Object.hasOwn(row, k) || !sameJson(row[k], v)) old[k] = v;
  }
  return old;
}

function fromV2(c: ChangeV2): LoggedChange {
  const pk = c.op === 'truncate' || !c.row ? null : Object.fromEntries(c.key.map((k) => [k, c.row![k] ?? null]));
  return {
    id: c.id, tenant: c.tenant, table: c.table, op: c.op, pk, row: c.row,
    old: c.op === 'update' ? changedColumns(c.row, c.old_row) : null,
    oldTenant: c.old_tenant,
  };
}

function fromV1({ old_tenant, ...c }: ChangeV1): LoggedChange {
  return { ...c, oldTenant: old_tenant ?? null };
}

/** Parses a NOTIFY relay payload; undefined when it is not one (the relay then reads the log instead). */
export function parseTickPayload(text: string): TickPayload | undefined {
  let p: Raw;
  try {
    p = JSON.parse(text) as Raw;
  } catch {
    return undefined;
  }
  if (!p || (p.v !== 1 && p.v !== 2) || typeof p.seq !== 'number' || !Number.isSafeInteger(p.seq) || p.seq <= 0) return undefined;
  const origin = typeof p.origin === 'string' ? p.origin : null;
  if (!Array.isArray(p.changes) || typeof p.at !== 'string') return { seq: p.seq, origin };
  const changes = p.v === 2 ? (p.changes as ChangeV2[]).map(fromV2) : (p.changes as ChangeV1[]).map(fromV1);
  return { seq: p.seq, at: p.at, origin, changes };
}

