// client.presence against a scripted relay: the join it sends, the list it keeps from presence frames, listeners, leaving, and joining again after a reconnect.
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRelayClient, RelayError, type PresenceMember, type PresenceUpdateMessage, type RelayClient } from '../index.js';
import { leakGuard, passes, sleep, until } from '../../db/testing/index.js';
import { fakeJwt, startTestRelay, type TestRelay } from './support/test-relay.js';

// timers count too: the client's reconnect, heartbeat and refresh timers must end with the test
leakGuard({ timers: true, timeoutMs: 2000 });

let relay: TestRelay | undefined;
let client: RelayClient | undefined;
afterEach(async () => {
  client?.close();
  await relay?.close();
  relay = client = undefined;
});

const errors: RelayError[] = [];
async function connect() {
  relay = await startTestRelay();
  errors.length = 0;
  client = createRelayClient({ url: relay.url, token: fakeJwt({}), WebSocket, backoff: { minMs: 10, maxMs: 20 }, onError: (e) => errors.push(e) });
  return { relay, client };
}

const m = (sub: string, name: string | null = null): PresenceMember => ({ sub, name });
const subs = (list: PresenceMember[]) => list.map((x) => x.sub);

describe('client.presence', () => {
  it('joins, then keeps the list from the relay: the members first, then leaves and joins applied', async () => {
    const { relay, client } = await connect();
    const conn = await relay.nextConnection();
    const calls: Array<[PresenceMember[], PresenceUpdateMessage]> = [];
    const stop = client.presence((members, update) => calls.push([members, update]));
    expect(await conn.next('presence')).toEqual({ type: 'presence', join: true });
    conn.send({ type: 'presence', members: [m('a', 'Ann'), m('b')] });
    await until(passes(() => expect(calls).toHaveLength(1)));
    expect(calls[0]).toEqual([[m('a', 'Ann'), m('b')], { type: 'presence', members: [m('a', 'Ann'), m('b')] }]);
    conn.send({ type: 'presence', joins: [m('c', 'Cy')], leaves: [m('b')] });
    // a join of a member already there is a new display name: the entry is replaced, not doubled
    conn.send({ type: 'presence', joins: [m('a', 'Ann B.')], leaves: [] });
    await until(passes(() => expect(calls).toHaveLength(3)));
    expect(calls[1]![0]).toEqual([m('a', 'Ann'), m('c', 'Cy')]);
    expect(calls[1]![1]).toEqual({ type: 'presence', joins: [m('c', 'Cy')], leaves: [m('b')] });
    expect(calls[2]![0]).toEqual([m('c', 'Cy'), m('a', 'Ann B.')]);
    // each call gets a list of its own: a listener may keep it (React state) without it changing under it
    expect(calls[0]![0]).not.toBe(calls[1]![0]);
    stop();
    expect(await conn.next('presence')).toEqual({ type: 'presence', join: false });
  });

  it('several listeners share one join; a later one gets the current list at once; the last unsubscribe leaves, once', async () => {
    const { relay, client } = await connect();
    const conn = await relay.nextConnection();
    const first: string[][] = [];
    const second: string[][] = [];
    const stop1 = client.presence((list) => first.push(subs(list)));
    await conn.next('presence');
    conn.send({ type: 'presence', members: [m('a')] });
    await until(passes(() => expect(first).toEqual([['a']])));
    const stop2 = client.presence((list) => second.push(subs(list)));
    expect(second).toEqual([['a']]);
    conn.send({ type: 'presence', joins: [m('b')], leaves: [] });
    await until(passes(() => expect(second).toEqual([['a'], ['a', 'b']])));
    expect(first).toEqual([['a'], ['a', 'b']]);
    stop1();
    stop1();
    await sleep(30);
    expect(conn.received.filter((x) => x.type === 'presence')).toEqual([{ type: 'presence', join: true }]);
    stop2();
    expect(await conn.next('presence')).toEqual({ type: 'presence', join: false });
    await sleep(30);
    expect(conn.received.filter((x) => x.type === 'presence')).toHaveLength(2);
  });

  it('called before the relay says welcome: joins once the socket is open, and again after every reconnect', async () => {
    const { relay, client } = await connect();
    const lists: string[][] = [];
    client.presence((list) => lists.push(subs(list)));
    const conn1 = await relay.nextConnection();
    expect(await conn1.next('presence')).toEqual({ type: 'presence', join: true });
    conn1.send({ type: 'presence', members: [m('a'), m('me')] });
    await until(passes(() => expect(lists).toEqual([['a', 'me']])));
    conn1.close(1011);
    const conn2 = await relay.nextConnection();
    expect(await conn2.next('presence')).toEqual({ type: 'presence', join: true });
    // the new relay's list replaces the old one (a left while the client was away)
    conn2.send({ type: 'presence', members: [m('me')] });
    await until(passes(() => expect(lists).toEqual([['a', 'me'], ['me']])));
    await sleep(30);
    expect(conn1.received.filter((x) => x.type === 'presence')).toHaveLength(1);
    expect(conn2.received.filter((x) => x.type === 'presence')).toHaveLength(1);
  });

  it('a listener that throws is reported as handler_error; the others and the connection go on', async () => {
    const { relay, client } = await connect();
    const conn = await relay.nextConnection();
    const seen: string[][] = [];
    client.presence(() => {
      throw new Error('boom');
    });
    await conn.next('presence');
    conn.send({ type: 'presence', members: [m('a')] });
    await until(passes(() => expect(errors.map((e) => e.code)).toEqual(['handler_error'])));
    expect(errors[0]!.message).toBe('A presence handler threw.');
    expect((errors[0]!.cause as Error).message).toBe('boom');
    client.presence((list) => seen.push(subs(list)));
    expect(seen).toEqual([['a']]);
    expect(client.status).toBe('open');
  });

  it('a diff in flight when the last listener left, then a new join: the new list is what counts', async () => {
    const { relay, client } = await connect();
    const conn = await relay.nextConnection();
    const stop = client.presence(() => undefined);
    await conn.next('presence');
    conn.send({ type: 'presence', members: [m('a')] });
    stop();
    await conn.next('presence');
    // sent by the relay before it read the leave
    conn.send({ type: 'presence', joins: [m('b')], leaves: [] });
    await sleep(30);
    const lists: string[][] = [];
    client.presence((list) => lists.push(subs(list)));
    await conn.next('presence');
    conn.send({ type: 'presence', members: [m('a'), m('c')] });
    await until(passes(() => expect(lists.at(-1)).toEqual(['a', 'c'])));
    expect(errors).toEqual([]);
  });
});
