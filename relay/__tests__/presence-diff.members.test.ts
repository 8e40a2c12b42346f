// presenceDiff, the pure part of presence: what one re-read of a tenant's members tells the sockets in it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PresenceMember } from '../../client/shared/protocol.js';
import { presenceDiff } from '../presence/presence-diff.js';

const list = (...members: Array<[string, string | null]>) => new Map(members.map(([sub, name]) => [sub, { sub, name }]));

describe('presenceDiff', () => {
  it('says who joined, who left, and whose display name changed (as a join); nothing when nothing did', () => {
    expect(presenceDiff(list(['a', 'A'], ['b', null]), list(['a', 'A'], ['b', null]))).toBeUndefined();
    expect(presenceDiff(list(['a', 'A'], ['b', null]), list(['b', null], ['c', 'C']))).toEqual({ joins: [{ sub: 'c', name: 'C' }], leaves: [{ sub: 'a', name: 'A' }] });
    expect(presenceDiff(list(['a', null]), list(['a', 'Ann']))).toEqual({ joins: [{ sub: 'a', name: 'Ann' }], leaves: [] });
    expect(presenceDiff(new Map(), list(['a', null]))).toEqual({ joins: [{ sub: 'a', name: null }], leaves: [] });
  });

  it('applied as the client applies it (leaves, then joins replacing by sub), turns the old list into the new one', () => {
    const members = fc.uniqueArray(fc.record({ sub: fc.constantFrom('a', 'b', 'c', 'd', 'e', '__proto__'), name: fc.option(fc.constantFrom('x', 'y')) }), { selector: (m) => m.sub });
    fc.assert(fc.property(members, members, (before, after) => {
      const diff = presenceDiff(new Map(before.map((m) => [m.sub, m])), new Map(after.map((m) => [m.sub, m])));
      let list: PresenceMember[] = before;
      if (diff) {
        const named = new Set([...diff.leaves, ...diff.joins].map((m) => m.sub));
        list = list.filter((m) => !named.has(m.sub)).concat(diff.joins);
      }
      const bySub = (l: PresenceMember[]) => [...l].sort((x, y) => (x.sub < y.sub ? -1 : 1));
      expect(bySub(list)).toEqual(bySub(after));
    }));
  });
});
