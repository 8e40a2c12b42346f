// A presence load worker (bench:presence, bench:relays): its share of clients of the client library, each its own member.
// Client i is sub u<i> of tenant t<i mod tenants> on relay <i mod relays>. On command they join presence, or half of them
// leave; it reports over IPC when each client's list was complete (epoch ms, comparable across processes) and the
// presence frames it received.
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { createRelayClient, type RelayClient } from '../../client/index.js';
import { sleep } from '../../db/testing/wait.js';

interface Start { type: 'start'; urls: string[]; secret: string; sockets: number; tenants: number; first: number; count: number }
type Command = Start | { type: 'join' } | { type: 'leave' } | { type: 'idle' } | { type: 'report' } | { type: 'stop' };

const now = () => performance.timeOrigin + performance.now();
const send = (m: unknown) => process.send!(m);
let setup: Start;
const clients: RelayClient[] = [];
const stops: Array<(() => void) | undefined> = [];
/** The member count each client waits for in the current phase, and when it first saw it (0: not yet). */
let want: number[] = [];
let done: number[] = [];
let frames = 0;
let bytes = 0;

/** Sockets of tenant `t` among `sockets`, and how many of them stay after the leave storm (those with an even round). */
const inTenant = (t: number) => Math.floor((setup.sockets - 1 - t) / setup.tenants) + 1;
const stays = (i: number) => Math.floor(i / setup.tenants) % 2 === 0;
const stayersIn = (t: number) => Math.ceil(inTenant(t) / 2);

async function start(m: Start): Promise<void> {
  setup = m;
  const key = new TextEncoder().encode(m.secret);
  // counts the presence frames the client library consumes, without changing them
  const Probe = class extends WebSocket {
    constructor(u: string, p: string[]) {
      super(u, p);
      this.on('message', (d: Buffer) => {
        if (d.length > 16 && d.toString('latin1', 0, 18) === '{"type":"presence"') {
          frames++;
          bytes += d.length;
        }
      });
    }
  };
  for (let k = 0; k < m.count; k++) {
    const i = m.first + k;
    const token = await new SignJWT({ tenant_id: `t${i % m.tenants}`, sub: `u${i}`, name: `User ${i}` }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('2h').sign(key);
    clients.push(createRelayClient({ url: m.urls[i % m.urls.length]!, token, WebSocket: Probe as never }));
    if (k % 100 === 99) await sleep(20); // a gentle ramp: connecting is not what is measured
  }
  while (clients.some((c) => c.status !== 'open')) await sleep(50);
  send({ type: 'connected' });
}

function phase(expected: (i: number) => number | undefined): void {
  want = clients.map((_, k) => expected(setup.first + k) ?? -1);
  done = clients.map((_, k) => (want[k] === -1 ? -1 : 0));
  frames = bytes = 0;
}

process.on('message', (m: Command) => {
  if (m.type === 'start') void start(m);
  else if (m.type === 'join') {
    phase((i) => inTenant(i % setup.tenants));
    clients.forEach((c, k) => {
      stops[k] = c.presence((members) => {
        if (done[k] === 0 && members.length === want[k]) done[k] = now();
      });
    });
  } else if (m.type === 'leave') {
    phase((i) => (stays(i) ? stayersIn(i % setup.tenants) : undefined));
    clients.forEach((_, k) => {
      if (stays(setup.first + k)) return;
      stops[k]?.();
      stops[k] = undefined;
    });
  } else if (m.type === 'idle') {
    phase(() => undefined);
  } else if (m.type === 'report') {
    send({ type: 'report', done, frames, bytes, complete: done.every((t) => t !== 0) });
  } else {
    for (const c of clients) c.close();
    setTimeout(() => process.exit(0), 200);
  }
});
send({ type: 'ready' });
