// Issue 26: a second `pgrelay start` on a port a relay already holds fails with one sentence, unless every relay on it opts
// in with RELAY_REUSEPORT (one process a core, the kernel spreading connections); then each of them serves.
import { readdir, readFile, readlink } from 'node:fs/promises';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../client/shared/free-port.js';
import { leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { nodeHasReusePort } from '../server/node-server.js';
import { relayEnv, useCliProcesses, type CliProcess } from './support/cli-process.js';
import { httpGet } from './support/relay-harness.js';
import { expectedServer } from './support/server-under-test.js';

const db = useTestDatabase();
const cli = useCliProcesses();
leakGuard(() => db.name);

const taken = (port: number) => `pgrelay: Cannot listen on 127.0.0.1:${port}: the port is in use or not allowed; set PORT (or --port) to a free port.`;

function start(port: number, env: Record<string, string> = {}): CliProcess {
  return cli.run(['start'], relayEnv(db, port, { LOG_FORMAT: 'json', ...env }));
}

async function stop(p: CliProcess): Promise<void> {
  p.signal('SIGTERM');
  expect(await p.exited).toBe(0);
}

/** The local addresses of the sockets listening on 127.0.0.1:`port`, one entry per socket (Linux: from /proc/net/tcp). */
async function listeners(port: number): Promise<number> {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return (await readFile('/proc/net/tcp', 'utf8')).split('\n').slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter(([, local, , state]) => state === '0A' && local === `0100007F${hexPort}`).length;
}

/**
 * Which of `pids` accepted a new connection to 127.0.0.1:`port`: a request answered on it proves the process accepted
 * it, and the kernel's socket tables say whose file descriptor its server end is.
 */
async function acceptedBy(port: number, pids: number[]): Promise<number | undefined> {
  const socket = net.connect(port, '127.0.0.1');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.once('connect', () => socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
      socket.once('data', (d) => (String(d).startsWith('HTTP/1.1 200') ? resolve() : reject(new Error(`answered ${String(d).split('\r\n')[0]}`))));
    });
    const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
    // the server's end: local 127.0.0.1:port, remote 127.0.0.1:<this socket's port>, established
    const row = (await readFile('/proc/net/tcp', 'utf8')).split('\n').map((l) => l.trim().split(/\s+/))
      .find(([, local, remote, state]) => local === `0100007F:${hex(port)}` && remote === `0100007F:${hex(socket.localPort!)}` && state === '01');
    const inode = row?.[9];
    if (!inode || inode === '0') return undefined;
    for (const pid of pids) {
      for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [])) {
        if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === `socket:[${inode}]`) return pid;
      }
    }
    return undefined;
  } finally {
    socket.destroy();
  }
}

describe.runIf(process.platform === 'linux')('a second pgrelay start on the same port', () => {
  it('fails with the sentence for a port in use, and the first relay keeps serving alone', async () => {
    const port = await freePort();
    const first = start(port);
    await first.waitFor(/pgrelay listening on/, 60_000);
    const second = start(port);
    expect(await second.exited).toBe(1);
    expect(second.stderr().trim().split('\n').at(-1)).toBe(taken(port));
    expect(await listeners(port)).toBe(1);
    expect((await httpGet(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    await stop(first);
  }, 120_000);

  it('fails too when only the second one opts in: every relay on a port must set RELAY_REUSEPORT', async () => {
    const port = await freePort();
    const first = start(port);
    await first.waitFor(/pgrelay listening on/, 60_000);
    const second = start(port, { RELAY_REUSEPORT: 'on' });
    expect(await second.exited).toBe(1);
    expect(second.stderr().trim().split('\n').at(-1)).toMatch(expectedServer() === 'ws' && !nodeHasReusePort ? /^pgrelay: RELAY_REUSEPORT is on, but the ws fallback can share a port only from Node 22\.12/ : new RegExp(`^${taken(port).replace(/[.()?]/g, '\\$&')}$`));
    await stop(first);
  }, 120_000);

  it('with RELAY_REUSEPORT=on on both, both serve the port (or, on the ws fallback before Node 22.12, start says why it cannot)', async () => {
    const port = await freePort();
    const first = start(port, { RELAY_REUSEPORT: 'on' });
    if (expectedServer() === 'ws' && !nodeHasReusePort) {
      expect(await first.exited).toBe(1);
      expect(first.stderr().trim().split('\n').at(-1)).toBe(`pgrelay: RELAY_REUSEPORT is on, but the ws fallback can share a port only from Node 22.12 (this is Node ${process.versions.node}); run the native server (docs/operations.md, "Native WebSocket server"), a newer Node, or each relay on a port of its own behind a load balancer.`);
      return;
    }
    await first.waitFor(/pgrelay listening on/, 60_000);
    const second = start(port, { RELAY_REUSEPORT: '1' });
    await second.waitFor(/pgrelay listening on/, 60_000);
    expect(await listeners(port)).toBe(2);
    // the kernel spreads new connections over both (by a hash of the client's address and port): each new
    // connection is a fair coin, so 40 of them all landing on one relay would take 2^-39 odds
    const pids = [first.child.pid!, second.child.pid!];
    const seen = new Set<number>();
    for (let i = 0; i < 40 && seen.size < 2; i++) {
      const pid = await acceptedBy(port, pids);
      expect(pids).toContain(pid);
      seen.add(pid!);
    }
    expect([...seen].sort()).toEqual([...pids].sort());
    await stop(second);
    await stop(first);
  }, 120_000);
});
