// The React bindings with react-dom's real renderer (components render nothing, so a stub container is enough) and a scripted relay.
import { createElement } from 'react';
import { renderToString } from 'react-dom/server';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRelayClient, type RelayClient, type SubscribeOptions, type SubscriptionHandlers } from '../index.js';
import { usePresence, useRelayStatus, useSubscription } from '../react.js';
import { leakGuard, passes, sleep, until } from '../../db/testing/index.js';
import { mount, type Mounted } from './support/react-root.js';
import { fakeJwt, startTestRelay, type TestRelay } from './support/test-relay.js';

// timers count too: the client's reconnect, heartbeat and refresh timers must end with the test
leakGuard({ timers: true, timeoutMs: 2000 });

let relay: TestRelay | undefined;
let client: RelayClient | undefined;
let mounted: Mounted | undefined;
afterEach(async () => {
  await mounted?.unmount();
  client?.close();
  await relay?.close();
  relay = client = mounted = undefined;
});

async function connect() {
  relay = await startTestRelay();
  client = createRelayClient({ url: relay.url, token: fakeJwt({}), WebSocket, backoff: { minMs: 10, maxMs: 20 } });
  return { relay, client };
}

describe('useRelayStatus', () => {
  it('re-renders on every status change', async () => {
    const { relay, client } = await connect();
    const rendered: string[] = [];
    function Status() {
      rendered.push(useRelayStatus(client));
      return null;
    }
    mounted = await mount(createElement(Status));
    const first = await relay.nextConnection();
    await until(passes(() => expect(rendered.at(-1)).toBe('open')));
    first.close(1011);
    await relay.nextConnection();
    await until(passes(() => expect(rendered.at(-1)).toBe('open')));
    expect([...new Set(rendered)]).toEqual(['connecting', 'open', 'reconnecting']);
  });

  it('renders on the server from the current status', async () => {
    const { client } = await connect();
    function Status() {
      return createElement('span', null, useRelayStatus(client));
    }
    expect(renderToString(createElement(Status))).toBe('<span>connecting</span>');
  });
});

describe('useSubscription', () => {
  it('subscribes on mount, calls the latest handlers, resubscribes when options change, unsubscribes on unmount', async () => {
    const { relay, client } = await connect();
    const conn = await relay.nextConnection();
    const seen: string[] = [];
    function Orders(p: { options: SubscribeOptions; handlers: SubscriptionHandlers }) {
      useSubscription(client, 'orders', p.options, p.handlers);
      return null;
    }
    const tag = (name: string): SubscriptionHandlers => ({ onChange: (c, tx) => seen.push(`${name} ${tx.seq} ${c.op}`) });
    const open = { filter: { status: { eq: 'open' } } };
    mounted = await mount(createElement(Orders, { options: open, handlers: tag('a') }));
    const s1 = await conn.next('subscribe');
    conn.send({ type: 'tx', sub: s1.id, seq: 1, at: '', origin: null, changes: [{ table: 'public.orders', op: 'insert', pk: { id: '1' }, row: { id: '1' } }] });
    await until(passes(() => expect(seen).toEqual(['a 1 insert'])));

    // New handler functions and equal options (a new object): no resubscribe, the new handler is called.
    await mounted.rerender(createElement(Orders, { options: { filter: { status: { eq: 'open' } } }, handlers: tag('b') }));
    conn.send({ type: 'tx', sub: s1.id, seq: 2, at: '', origin: null, changes: [{ table: 'public.orders', op: 'delete', pk: { id: '1' }, row: { id: '1' } }] });
    await until(passes(() => expect(seen).toEqual(['a 1 insert', 'b 2 delete'])));
    await sleep(20);
    expect(conn.received.map((m) => m.type)).toEqual(['subscribe']);

    await mounted.rerender(createElement(Orders, { options: { filter: { status: { eq: 'shipped' } } }, handlers: tag('b') }));
    expect(await conn.next('unsubscribe')).toEqual({ type: 'unsubscribe', id: s1.id });
    const s2 = await conn.next('subscribe');
    expect(s2.filter).toEqual({ status: { eq: 'shipped' } });
    await mounted.unmount();
    mounted = undefined;
    expect(await conn.next('unsubscribe')).toEqual({ type: 'unsubscribe', id: s2.id });
  });
});

describe('usePresence', () => {
  it('joins on mount, re-renders with each list, leaves on unmount', async () => {
    const { relay, client } = await connect();
    const conn = await relay.nextConnection();
    const rendered: string[] = [];
    function Viewers() {
      rendered.push(usePresence(client).map((m) => m.name ?? m.sub).join(','));
      return null;
    }
    mounted = await mount(createElement(Viewers));
    expect(await conn.next('presence')).toEqual({ type: 'presence', join: true });
    conn.send({ type: 'presence', members: [{ sub: 'u1', name: 'Ann' }, { sub: 'u2', name: null }] });
    await until(passes(() => expect(rendered.at(-1)).toBe('Ann,u2')));
    conn.send({ type: 'presence', joins: [{ sub: 'u3', name: 'Cy' }], leaves: [{ sub: 'u1', name: 'Ann' }] });
    await until(passes(() => expect(rendered.at(-1)).toBe('u2,Cy')));
    expect(rendered[0]).toBe('');
    await mounted.unmount();
    mounted = undefined;
    expect(await conn.next('presence')).toEqual({ type: 'presence', join: false });
  });
});
