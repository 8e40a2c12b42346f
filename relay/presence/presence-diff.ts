// What one re-read of a tenant's members tells the sockets in it: who joined (or changed their display name) and who left.
import type { PresenceMember } from '../../client/shared/protocol.js';

/** The members who joined (or changed their display name) and left between two lists; undefined when none did. */
export function presenceDiff(before: ReadonlyMap<string, PresenceMember>, after: ReadonlyMap<string, PresenceMember>): { joins: PresenceMember[]; leaves: PresenceMember[] } | undefined {
  const joins: PresenceMember[] = [];
  const leaves: PresenceMember[] = [];
  for (const [sub, m] of after) {
    const was = before.get(sub);
    if (!was || was.name !== m.name) joins.push(m);
  }
  for (const [sub, m] of before) if (!after.has(sub)) leaves.push(m);
  return joins.length > 0 || leaves.length > 0 ? { joins, leaves } : undefined;
}
