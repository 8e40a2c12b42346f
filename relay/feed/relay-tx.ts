// A committed transaction as the relay holds it: the logged changes plus their wire JSON, serialized once.
import type { LoggedChange, LoggedTransaction } from '../../db/log-reader.js';

export interface RelayChange extends LoggedChange {
  /** `{"table":…,"op":…,"pk":…,"row":…,"old":…}`: the change as every unfiltered subscriber receives it. */
  readonly json: string;
}

export interface RelayTx {
  readonly seq: number;
  readonly at: string;
  readonly origin: string | null;
  readonly changes: readonly RelayChange[];
  /** Approximate memory held, for the ring's byte bound. */
  readonly bytes: number;
}

export function wireChangeJson(c: Pick<LoggedChange, 'table' | 'op' | 'pk' | 'row' | 'old'>): string {
  return JSON.stringify({ table: c.table, op: c.op, pk: c.pk, row: c.row, old: c.old });
}

/** `…+00:00` → `…Z`: commit times go out in UTC with a `Z`, as the CLI prints them (the digits are kept, microseconds too). */
export function utcZ(at: string): string {
  return at.endsWith('+00:00') ? `${at.slice(0, -6)}Z` : at;
}

export function toRelayTx(tx: LoggedTransaction): RelayTx {
  const at = utcZ(tx.at);
  let bytes = 96 + at.length + (tx.origin?.length ?? 0);
  const changes = tx.changes.map((c) => {
    const json = wireChangeJson(c);
    // the parsed objects cost about what their JSON does, once more
    bytes += 2 * json.length + 64;
    return { ...c, json };
  });
  return { seq: tx.seq, at, origin: tx.origin, changes, bytes };
}
