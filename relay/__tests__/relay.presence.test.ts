// Issue 14, presence: members of a tenant see the list, then joins and leaves; one sub is one member over any number of
// sockets and relays; a relay killed with SIGKILL loses its members within the configured bound; tenants never mix.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../client/shared/free-port.js';
import { leakGuard, sleep, until, useTestDatabase } from '../../db/testing/index.js';
import { useCliProcesses } from './support/cli-process.js';
import { connect, httpGet, metric, startTestRelay, token, type Frame, type TestClient, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
const TTL_MS = 1500;
let a: TestRelay;
let b: TestRelay;
const cli = useCliProcesses();

beforeAll(async () => {
  // two relays on one database: presence is shared through Postgres alone
  a = await startTestRelay(db, { RELAY_PRESENCE_TTL_MS: String(TTL_MS) });
  b = await startTestRelay(db, { RELAY_PRESENCE_TTL_MS: String(TTL_MS) });
});
leakGuard(() => db.name);

const open: TestClient[] = [];
afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
});

/** A socket of `sub` (display name `name`) in `tenant`, on `relay`. */
async function as(relay: TestRelay | string, tenant: string, sub: string | undefined, name?: string, extra: Record<string, unknown> = {}): Promise<TestClient> {
  const c = await connect(typeof relay === 'string' ? relay : relay.url, await token({ tenant_id: tenant, ...(sub ? { sub } : {}), ...(name ? { name } : {}), ...extra }));
  open.push(c);
  return c;
}

/** Joins and resolves with the member list the relay answers with. */
async function join(c: TestClient): Promise<Frame[]> {
  c.send({ type: 'presence', join: true });
  return (await c.next((f) => f.type === 'presence' && f.members !== undefined)).members as Frame[];
}

/** Every presence frame the socket received, in order (the state and the diffs). */
const presenceFrames = (c: TestClient) => c.frames.filter((f) => f.type === 'presence');

/** The member list a socket has built from its presence frames, sorted by sub. */
function membersSeen(c: TestClient): string[] {
  const seen = new Map<string, string | null>();
  for (const f of presenceFrames(c)) {
    if (f.members) {
      seen.clear();
      for (const m of f.members) seen.set(m.sub, m.name);
    } else {
      for (const m of f.leaves) seen.delete(m.sub);
      for (const m of f.joins) seen.set(m.sub, m.name);
    }
  }
  return [...seen.keys()].sort();
}

const diff = (c: TestClient, match: (f: Frame) => boolean, timeoutMs?: number) => c.next((f) => f.type === 'presence' && f.joins !== undefined && match(f), timeoutMs);
const joined = (sub: string) => (f: Frame) => f.joins.some((m: Frame) => m.sub === sub);
const left = (sub: string) => (f: Frame) => f.leaves.some((m: Frame) => m.sub === sub);

describe('presence on one relay', () => {
  it('a member gets the list (itself in it), then the joins and leaves of the others, with their display names', async () => {
    const ana = await as(a, 'p1', 'u-ana', 'Ana');
    expect(await join(ana)).toEqual([{ sub: 'u-ana', name: 'Ana' }]);
    const bob = await as(a, 'p1', 'u-bob');
    expect(await join(bob)).toEqual([{ sub: 'u-ana', name: 'Ana' }, { sub: 'u-bob', name: null }]);
    expect(await diff(ana, joined('u-bob'))).toEqual({ type: 'presence', joins: [{ sub: 'u-bob', name: null }], leaves: [] });
    await bob.close();
    expect(await diff(ana, left('u-bob'))).toEqual({ type: 'presence', joins: [], leaves: [{ sub: 'u-bob', name: null }] });
    // leaving by message is the same as closing; the socket itself stays open
    const cy = await as(a, 'p1', 'u-cy', 'Cy');
    await join(cy);
    await diff(ana, joined('u-cy'));
    cy.send({ type: 'presence', join: false });
    await diff(ana, left('u-cy'));
    cy.send({ type: 'ping' });
    await cy.next((f) => f.type === 'pong');
    expect(cy.ws.readyState).toBe(cy.ws.OPEN);
    expect(membersSeen(ana)).toEqual(['u-ana']);
    await Promise.all([ana.close(), cy.close()]);
  });

  it("a socket that joins while the relay is writing or reading an earlier batch still finds itself in its list", async () => {
    // Joins spread over several batches (50 ms each), a few milliseconds apart, so some arrive while a batch's write or
    // read is in flight. Each must get a list read after its own member was written (found by a full run under load).
    const sockets = await Promise.all(Array.from({ length: 40 }, (_, i) => as(a, 'p9', `u-${i}`)));
    const lists = sockets.map(async (c, i) => {
      await sleep(i * 4);
      return { sub: `u-${i}`, members: (await join(c)).map((m) => m.sub as string) };
    });
    for (const { sub, members } of await Promise.all(lists)) expect(members, `${sub}'s first list`).toContain(sub);
    await Promise.all(sockets.map((c) => c.close()));
  });

  it('several sockets of one sub are one member, who leaves with the last of them', async () => {
    const watcher = await as(a, 'p2', 'u-w');
    await join(watcher);
    const [s1, s2, s3] = [await as(a, 'p2', 'u-1', 'One'), await as(a, 'p2', 'u-1', 'One'), await as(a, 'p2', 'u-1', 'One')];
    await join(s1);
    await diff(watcher, joined('u-1'));
    expect(await join(s2)).toEqual([{ sub: 'u-1', name: 'One' }, { sub: 'u-w', name: null }]);
    await join(s3);
    await s1.close();
    s2.send({ type: 'presence', join: false });
    // a later join is the next thing the watcher hears: no leave of u-1 came before it
    const other = await as(a, 'p2', 'u-2');
    await join(other);
    await diff(watcher, joined('u-2'));
    expect(presenceFrames(watcher).flatMap((f) => f.leaves ?? [])).toEqual([]);
    await s3.close();
    await diff(watcher, left('u-1'));
    expect(presenceFrames(watcher).filter((f) => f.joins?.some((m: Frame) => m.sub === 'u-1'))).toHaveLength(1);
    expect(membersSeen(watcher)).toEqual(['u-2', 'u-w']);
    await Promise.all([watcher.close(), s2.close(), other.close()]);
  });

  it('a join storm is a few statements and notifications, not one per socket, and every socket ends with the full list', async () => {
    const listener = await db.connect();
    const notes: string[] = [];
    listener.on('notification', (n) => n.channel === 'relay_presence' && notes.push(n.payload ?? ''));
    await listener.query('listen relay_presence');
    const syncs = async () => metric((await httpGet(`${a.http}/metrics`)).body, 'pgrelay_presence_statements_total', '{kind="sync"}');
    const before = await syncs();
    const tokens = await Promise.all(Array.from({ length: 150 }, (_, i) => token({ tenant_id: `storm${i % 3}`, sub: `s${i}` })));
    const sockets = await Promise.all(tokens.map((t) => connect(a.url, t)));
    open.push(...sockets);
    for (const s of sockets) s.send({ type: 'presence', join: true });
    const expected = (t: number) => Array.from({ length: 50 }, (_, i) => `s${i * 3 + t}`).sort();
    await Promise.all(sockets.map((s, i) => s.until(() => membersSeen(s).join() === expected(i % 3).join(), 15_000, `the 50 members of storm${i % 3}`)));
    const statements = (await syncs()) - before;
    // 150 joins in well under a second: a handful of batches (one per ~50 ms, plus one in flight)
    expect(statements).toBeGreaterThan(0);
    expect(statements).toBeLessThanOrEqual(15);
    await sleep(200);
    // (the leaves of the tests before may still be flushing: count the storm's notifications)
    const stormNotes = notes.filter((n) => (JSON.parse(n) as { tenants: string[] }).tenants.some((t) => t.startsWith('storm')));
    expect(stormNotes.length).toBeGreaterThan(0);
    expect(stormNotes.length).toBeLessThanOrEqual(statements);
    await Promise.all(sockets.map((s) => s.close()));
    await listener.end();
  });
});

describe('presence across relays', () => {
  it('members on two relays see each other; a sub on both leaves only when its last socket on either does', async () => {
    const onA = await as(a, 'x1', 'u-a', 'A');
    const onB = await as(b, 'x1', 'u-b', 'B');
    await join(onA);
    await join(onB);
    await onA.until(() => membersSeen(onA).join() === 'u-a,u-b', 10_000, 'u-b from relay b');
    expect(membersSeen(onB)).toEqual(['u-a', 'u-b']);
    const both = [await as(a, 'x1', 'u-c'), await as(b, 'x1', 'u-c')];
    await Promise.all(both.map(join));
    await onA.until(() => membersSeen(onA).includes('u-c'));
    await onB.until(() => membersSeen(onB).includes('u-c'));
    await both[0]!.close();
    // the sub's socket on relay b keeps it present; a join afterwards shows nothing came in between
    await sleep(300);
    const later = await as(a, 'x1', 'u-d');
    await join(later);
    await diff(onB, joined('u-d'));
    expect(membersSeen(onB)).toEqual(['u-a', 'u-b', 'u-c', 'u-d']);
    await both[1]!.close();
    await diff(onA, left('u-c'));
    await diff(onB, left('u-c'));
    await Promise.all([onA.close(), onB.close(), later.close()]);
  });

  it('a relay that closes takes its members with it at once', async () => {
    const extra = await startTestRelay(db, { RELAY_PRESENCE_TTL_MS: '600000' });
    const watcher = await as(a, 'x2', 'u-w');
    await join(watcher);
    const there = await as(extra, 'x2', 'u-gone');
    await join(there);
    await diff(watcher, joined('u-gone'));
    const t0 = Date.now();
    await extra.close();
    await diff(watcher, left('u-gone'), 5_000);
    // not the expiry (10 minutes): relay.presence_end at shutdown
    expect(Date.now() - t0).toBeLessThan(5_000);
    await watcher.close();
  });

  it(`a relay killed with SIGKILL: its members leave the others' lists within RELAY_PRESENCE_TTL_MS × 4/3 (${TTL_MS} ms × 4/3)`, async () => {
    const port = await freePort();
    const killed = await cli.startRelay(db, port, { RELAY_PRESENCE_TTL_MS: String(TTL_MS) });
    const url = `ws://127.0.0.1:${port}/ws`;
    const watcher = await as(b, 'k1', 'u-watch');
    await join(watcher);
    const doomed = [await as(url, 'k1', 'u-k1', 'K1'), await as(url, 'k1', 'u-k2')];
    await Promise.all(doomed.map(join));
    await watcher.until(() => membersSeen(watcher).join() === 'u-k1,u-k2,u-watch', 10_000, 'the killed relay\'s members');
    // the heartbeat is refreshed every TTL/3: kill right after one, the worst case for the bound
    await sleep(TTL_MS / 3);
    killed.signal('SIGKILL');
    expect(await killed.exited).toBe('SIGKILL');
    const t0 = Date.now();
    await watcher.until(() => membersSeen(watcher).join() === 'u-watch', (TTL_MS * 4) / 3 + 3_000, 'the leaves of the killed relay\'s members');
    const tookMs = Date.now() - t0;
    console.log(`[presence] the members of a relay killed with SIGKILL left the other relay's lists ${tookMs} ms after the kill (RELAY_PRESENCE_TTL_MS ${TTL_MS}, bound ${(TTL_MS * 4) / 3} ms)`);
    // not before its entries expired, and within the bound (plus a batch and a loaded machine's timer slip)
    expect(tookMs).toBeGreaterThan(TTL_MS / 3);
    expect(tookMs).toBeLessThanOrEqual((TTL_MS * 4) / 3 + 1_000);
    await Promise.all(doomed.map((c) => c.close()));
    await watcher.close();
  }, 90_000);

  it("a relay whose entries were swept (it missed its refreshes) writes its members again", async () => {
    const watcher = await as(b, 'r1', 'u-watch');
    await join(watcher);
    const member = await as(a, 'r1', 'u-stays');
    await join(member);
    await diff(watcher, joined('u-stays'));
    const rows = async () => (await db.query<{ n: number }>(`select count(*)::int as n from relay.presence where sub = 'u-stays'`)).rows[0]!.n;
    // what a sweep does to a relay that stopped refreshing for longer than its TTL (relay a; the watcher's relay b goes
    // on), in one transaction so that relay a's next refresh waits for it
    await db.query(`begin;
      update relay.presence_relays set expires_at = now() - interval '1 second' where relay in (select relay from relay.presence where sub = 'u-stays');
      select relay.presence_sweep();
      commit`);
    expect(await rows()).toBe(0);
    // at its next refresh (TTL/3) the relay learns its entries are gone and writes them all again
    await until(async () => (await rows()) !== 0, { what: 'the relay to write its entries again', timeoutMs: TTL_MS + 3_000, intervalMs: 50 });
    expect(await rows()).toBe(1);
    // the watcher may or may not have seen u-stays leave meanwhile; it ends with u-stays there
    await watcher.until(() => membersSeen(watcher).join() === 'u-stays,u-watch' && presenceFrames(watcher).length >= 2, 5_000, 'u-stays');
    await sleep(300);
    expect(membersSeen(watcher)).toEqual(['u-stays', 'u-watch']);
    await Promise.all([watcher.close(), member.close()]);
  });
});

describe('presence and tenancy', () => {
  it("a token of tenant B never sees tenant A's members, and the same sub in two tenants is two members", async () => {
    // both tenants on both relays, so that each relay publishes changes of both while sockets of both listen
    const inA = await as(a, 'ten-a', 'u-1', 'Alice');
    const inB = await as(b, 'ten-b', 'u-2', 'Bo');
    expect(await join(inA)).toEqual([{ sub: 'u-1', name: 'Alice' }]);
    expect(await join(inB)).toEqual([{ sub: 'u-2', name: 'Bo' }]);
    const sameSubInB = await as(a, 'ten-b', 'u-1', 'Alice in B');
    expect(await join(sameSubInB)).toEqual([{ sub: 'u-1', name: 'Alice in B' }, { sub: 'u-2', name: 'Bo' }]);
    await diff(inB, joined('u-1'));
    const alsoA = await as(b, 'ten-a', 'u-3');
    expect(await join(alsoA)).toEqual([{ sub: 'u-1', name: 'Alice' }, { sub: 'u-3', name: null }]);
    await diff(inA, joined('u-3'));
    // changes in tenant A on each relay, while tenant B's sockets on that relay are in presence
    for (const relay of [a, b]) {
      const passing = await as(relay, 'ten-a', 'u-4', 'Passing');
      await join(passing);
      // (a visit shorter than the other relay's next read may never show there: wait until both saw it)
      await diff(inA, joined('u-4'));
      await diff(alsoA, joined('u-4'));
      await passing.close();
      await diff(inA, left('u-4'));
      await diff(alsoA, left('u-4'));
    }
    await sameSubInB.close();
    await diff(inB, left('u-1'));
    // tenant A's u-1 stayed: its namesake in tenant B leaving is not its leave
    expect(membersSeen(inA)).toEqual(['u-1', 'u-3']);
    await sleep(200);
    const everySeen = (c: TestClient) => presenceFrames(c).flatMap((f) => [...(f.members ?? []), ...(f.joins ?? []), ...(f.leaves ?? [])]).map((m: Frame) => `${m.sub}:${m.name}`);
    for (const c of [inB, sameSubInB]) expect(new Set(everySeen(c))).toEqual(new Set(['u-1:Alice in B', 'u-2:Bo']));
    for (const c of [inA, alsoA]) expect(new Set(everySeen(c))).toEqual(new Set(['u-1:Alice', 'u-3:null', 'u-4:Passing']));
    await Promise.all([inA.close(), inB.close(), alsoA.close()]);
  });

  it('no message can join another tenant or as someone else: identity and tenant come from the token only', async () => {
    const mallory = await as(a, 'ten-a', 'u-mallory');
    const victim = await as(a, 'ten-c', 'u-victim');
    await join(victim);
    for (const msg of [
      { type: 'presence', join: true, tenant: 'ten-c' },
      { type: 'presence', join: true, sub: 'u-victim' },
      { type: 'presence', join: true, name: 'Admin' },
      { type: 'presence', join: true, tenant_id: 'ten-c' },
    ]) {
      mallory.send(msg);
      const e = await mallory.next((f) => f.type === 'error');
      expect(e).toMatchObject({ code: 'bad_message', message: expect.stringMatching(/^presence: unknown field "\w+"; a presence message takes type and join\.$/) });
    }
    expect(await join(mallory)).toEqual([{ sub: 'u-mallory', name: null }]);
    await sleep(300);
    expect(membersSeen(victim)).toEqual(['u-victim']);
    // an auth refresh may not turn the socket into another member
    mallory.send({ type: 'auth', token: await token({ tenant_id: 'ten-a', sub: 'u-someone-else' }) });
    expect(await mallory.closed).toEqual({ code: 4003, reason: 'token for another tenant or other tables' });
    await victim.close();
  });

  it('refuses to join without a sub, or with an all_tenants token that names no tenant; an all_tenants token with a tenant joins it', async () => {
    const anonymous = await as(a, 'ten-d', undefined);
    anonymous.send({ type: 'presence', join: true });
    expect(await anonymous.next((f) => f.type === 'error')).toEqual({
      type: 'error', code: 'presence_not_allowed', message: 'presence: your token has no sub claim (a string of 1 to 256 characters), and presence names each member by it' });
    const numericSub = await connect(a.url, await token({ tenant_id: 'ten-d', sub: 42 }));
    open.push(numericSub);
    numericSub.send({ type: 'presence', join: true });
    expect(await numericSub.next((f) => f.type === 'error')).toMatchObject({ code: 'presence_not_allowed' });
    const admin = await connect(a.url, await token({ all_tenants: true, sub: 'u-admin' }));
    open.push(admin);
    admin.send({ type: 'presence', join: true });
    expect(await admin.next((f) => f.type === 'error')).toEqual({
      type: 'error', code: 'presence_not_allowed', message: 'presence: this all_tenants token has no tenant claim, so there is no tenant to be present in' });
    const support = await connect(a.url, await token({ all_tenants: true, tenant_id: 'ten-d', sub: 'u-support' }));
    open.push(support);
    expect(await join(support)).toEqual([{ sub: 'u-support', name: null }]);
    await Promise.all([anonymous.close(), numericSub.close(), admin.close(), support.close()]);
  });

  it('answers bad presence messages with an error that says what to send', async () => {
    const c = await as(a, 'ten-e', 'u-e');
    const cases: Array<[unknown, string]> = [
      [{ type: 'presence' }, 'presence: join is missing; join must be true (join the presence of your tenant) or false (leave it); who you are comes from your token.'],
      [{ type: 'presence', join: 'yes' }, 'presence: join must be true (join the presence of your tenant) or false (leave it); who you are comes from your token; got "yes".'],
      [{ type: 'presence', join: 1 }, 'presence: join must be true (join the presence of your tenant) or false (leave it); who you are comes from your token; got 1.'],
      [{ type: 'presence', join: null }, 'presence: join must be true (join the presence of your tenant) or false (leave it); who you are comes from your token; got null.'],
      [{ type: 'presence', join: true, members: [] }, 'presence: unknown field "members"; a presence message takes type and join.'],
    ];
    for (const [msg, message] of cases) {
      c.send(msg);
      expect(await c.next((f) => f.type === 'error')).toEqual({ type: 'error', code: 'bad_message', message });
    }
    // leaving without having joined is a no-op, and the socket still joins after all that
    c.send({ type: 'presence', join: false });
    expect(await join(c)).toEqual([{ sub: 'u-e', name: null }]);
    await c.close();
  });
});
