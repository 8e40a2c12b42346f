// A loopback TCP balancer in front of the relays: spreads connections, and cuts or stalls them on demand.
import net from 'node:net';

interface Conn {
  client: net.Socket;
  backend: net.Socket;
  backendPort: number;
  stalled: boolean;
  /** Bytes the relay sent on this connection. */
  bytes: number;
  /** The path of the client's HTTP upgrade request (`/ws?…`), once its first bytes arrived. */
  path: string;
}

export class TcpBalancer {
  readonly #server = net.createServer((client) => this.#accept(client));
  readonly #conns = new Set<Conn>();
  #backends: number[] = [];
  #next = 0;
  port = 0;

  /** Ports of the relays currently up; new connections go round-robin among them. */
  setBackends(ports: number[]): void {
    this.#backends = [...ports];
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this.port;
  }

  #accept(client: net.Socket): void {
    if (this.#backends.length === 0) {
      client.destroy();
      return;
    }
    const backendPort = this.#backends[this.#next++ % this.#backends.length]!;
    const backend = net.connect(backendPort, '127.0.0.1');
    const conn: Conn = { client, backend, backendPort, stalled: false, bytes: 0, path: '' };
    backend.on('data', (d: Buffer) => (conn.bytes += d.length));
    client.once('data', (d: Buffer) => (conn.path = /^[A-Z]+ (\S+)/.exec(d.toString('latin1', 0, 2048))?.[1] ?? ''));
    this.#conns.add(conn);
    const drop = () => {
      this.#conns.delete(conn);
      client.destroy();
      backend.destroy();
    };
    client.on('error', drop);
    backend.on('error', drop);
    client.on('close', drop);
    // A relay that closes its side has its last bytes (a close frame) forwarded first, as a real proxy does: the pipe
    // ends the client once everything is written, and that 'close' drops the pair.
    backend.on('close', () => {
      this.#conns.delete(conn);
      if (client.writableFinished || client.destroyed) drop();
      else setTimeout(drop, 2000).unref();
    });
    client.pipe(backend);
    backend.pipe(client);
  }

  /** Drops `n` random client connections at once, without any WebSocket close. Returns how many it cut. */
  cut(n: number): number {
    const all = [...this.#conns].filter((c) => !c.stalled);
    let cut = 0;
    for (let i = 0; i < n && all.length > 0; i++) {
      const c = all.splice(Math.floor(Math.random() * all.length), 1)[0]!;
      c.client.destroy();
      c.backend.destroy();
      cut++;
    }
    return cut;
  }

  /**
   * Stops reading from the relay for `ms` on the busiest connection (among those whose request path `prefer` accepts,
   * when there are any): the relay sees a stalled consumer.
   */
  stall(ms: number, prefer: (path: string) => boolean = () => true): boolean {
    const open = [...this.#conns].filter((x) => !x.stalled).sort((a, b) => b.bytes - a.bytes);
    const c = open.find((x) => prefer(x.path)) ?? open[0];
    if (!c) return false;
    c.stalled = true;
    c.backend.unpipe(c.client);
    c.backend.pause();
    setTimeout(() => {
      c.stalled = false;
      if (!c.backend.destroyed && !c.client.destroyed) {
        c.backend.pipe(c.client);
        c.backend.resume();
      }
    }, ms).unref();
    return true;
  }

  /** Relay ports that hold a stalled connection right now. */
  stalledBackends(): Set<number> {
    return new Set([...this.#conns].filter((c) => c.stalled).map((c) => c.backendPort));
  }

  get connections(): number {
    return this.#conns.size;
  }

  async close(): Promise<void> {
    for (const c of this.#conns) {
      c.client.destroy();
      c.backend.destroy();
    }
    await new Promise((r) => this.#server.close(r));
  }
}
