// A free TCP port for a server that binds it a moment later (the embedded Postgres, tests and benchmarks). Node only.
import net from 'node:net';

/** Binds `port` (0: the kernel picks) on `host` and lets it go; resolves with the port, or undefined when it is taken. */
function tryPort(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, host, () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : undefined));
    });
  });
}

/**
 * A port free on `host` now, for something that binds it a moment later. Picked from 20000–31999, below the ranges
 * from which kernels take the local ports of outgoing connections (Linux 32768–60999, macOS and Windows 49152–65535):
 * a port the kernel hands out for listen(0) comes from that range, and any connection opened meanwhile (a Postgres
 * client, say) could take it before it is bound (seen: "port in use" for a relay in a parallel test run).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await tryPort(20_000 + Math.floor(Math.random() * 12_000), host);
    if (port !== undefined) return port;
  }
  const port = await tryPort(0, host);
  if (port === undefined) throw new Error(`no free TCP port on ${host}`);
  return port;
}
