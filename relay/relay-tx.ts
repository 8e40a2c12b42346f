// A committed transaction as the relay holds it: the logged changes plus their wire JSON, serialized once.
import type { LoggedChange, LoggedTransaction } from '../db/log-reader.js';

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

export function toRelayTx(tx: LoggedTransaction): RelayTx {
  let bytes = 96 + tx.at.length + (tx.origin?.length ?? 0);
  const changes = tx.changes.map((c) => {
    const json = wireChangeJson(c);
    // the parsed objects cost about what their JSON does, once more
    bytes += 2 * json.length + 64;
    return { ...c, json };
  });
  return { seq: tx.seq, at: tx.at, origin: tx.origin, changes, bytes };
}
