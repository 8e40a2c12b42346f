// A TCP proxy on 127.0.0.1 in front of a relay, as a corporate proxy that does not know WebSockets: it refuses upgrade
// requests (400) and passes every other request through. It can also cut every connection, or play a relay that is down.
import net from 'node:net';

/** What happened to one request: `upgrade refused`, `http passed`, `upgrade dropped` (while down)… */
export type ProxyEvent = `${'upgrade' | 'http'} ${'refused' | 'passed' | 'dropped'}`;

export interface TestProxy {
  /** `ws://127.0.0.1:<port>/ws`: what a client is given. */
  url: string;
  /** Every request so far, in order. */
  log: ProxyEvent[];
  count(event: ProxyEvent): number;
  /** Called after each request is logged. */
  onRequest?: (event: ProxyEvent) => void;
  /** Drops every open connection at once, as a network cut does. */
  cut(): void;
  /** Stops passing data on every open connection, closing none: a half-open connection. New connections pass. */
  freeze(): void;
  /** While true every request is dropped once read, as if no relay ran. */
  down: boolean;
  /** Whether upgrade requests pass (else they get 400). */
  websockets: boolean;
  close(): Promise<void>;
}

export async function startTestProxy(relayPort: number, options: { websockets: boolean }): Promise<TestProxy> {
  const open = new Set<net.Socket>();
  const pairs = new Set<[net.Socket, net.Socket]>();
  const track = (s: net.Socket) => {
    open.add(s);
    s.once('close', () => open.delete(s));
    s.on('error', () => {});
  };
  const note = (e: ProxyEvent) => {
    proxy.log.push(e);
    proxy.onRequest?.(e);
  };
  const server = net.createServer((client) => {
    track(client);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      client.pause();
      const upgrade = /^upgrade:/im.test(head.subarray(0, end).toString('latin1'));
      const kind = upgrade ? 'upgrade' : 'http';
      if (proxy.down) {
        client.destroy();
        return note(`${kind} dropped`);
      }
      if (upgrade && !proxy.websockets) {
        client.end('HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 26\r\nconnection: close\r\n\r\nWebSockets are not allowed');
        return note('upgrade refused');
      }
      // One request per connection is looked at, so a plain request asks the relay to close after answering it.
      const text = head.toString('latin1');
      const request = upgrade ? text : text.replace(/\r\nconnection:[^\r]*/i, '').replace('\r\n', '\r\nconnection: close\r\n');
      const upstream = net.connect(relayPort, '127.0.0.1');
      track(upstream);
      upstream.once('connect', () => {
        upstream.write(request, 'latin1');
        client.pipe(upstream).pipe(client);
        client.resume();
      });
      const pair: [net.Socket, net.Socket] = [client, upstream];
      pairs.add(pair);
      upstream.once('close', () => client.destroy());
      client.once('close', () => (upstream.destroy(), pairs.delete(pair)));
      note(`${kind} passed`);
    };
    client.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const proxy: TestProxy = {
    url: `ws://127.0.0.1:${port}/ws`,
    log: [],
    count: (e) => proxy.log.filter((x) => x == e).length,
    cut: () => open.forEach((s) => s.destroy()),
    freeze() {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
      pairs.clear();
    },
    down: false,
    websockets: options.websockets,
    async close() {
      proxy.cut();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return proxy;
}
