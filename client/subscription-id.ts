// Subscription ids derived from what is subscribed, so every tab and client asking for the same stream uses the same id and the relay serializes each frame once for all of them.
import { canonicalJson } from './shared/canonical-json.js';
import type { Filter } from './shared/protocol.js';

/** `public.orders:1k3x9q`: the qualified table, then a 32-bit FNV-1a hash (base 36) of the filter and the snapshot flag. */
export function subscriptionId(table: string, filter: Filter | undefined, snapshot: boolean): string {
  let h = 2166136261;
  for (const ch of canonicalJson(filter ?? null) + (snapshot ? '+snapshot' : '')) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return `${table}:${(h >>> 0).toString(36)}`;
}
