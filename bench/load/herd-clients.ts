// A reconnect load worker (bench:herd): its share of clients of the client library, following `orders` over `ws`.
// It reports over IPC when each was welcomed, resubscribed and received the outage's transaction (epoch milliseconds,
// comparable across processes).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { createRelayClient, type RelayClient } from '../../client/index.js';
import { sleep } from '../../db/testing/wait.js';

interface Start { type: 'start'; url: string; tokens: string[]; transport?: 'auto' | 'websocket'; first: number; count: number }
type Command = Start | { type: 'reset'; marker: number } | { type: 'report' } | { type: 'stop' };

const now = () => performance.timeOrigin + performance.now();
const send = (m: unknown) => process.send!(m);
let welcomed: number[] = [];
let subscribed: number[] = [];
let caughtUp: number[] = [];
/** When each client's current (last) connection attempt began. */
let attempted: number[] = [];
let marker = -1;
const clients: RelayClient[] = [];
const loop = monitorEventLoopDelay({ resolution: 10 });
let usage = process.cpuUsage();
let since = now();

async function start(m: Start): Promise<void> {
  welcomed = new Array<number>(m.count).fill(0);
  subscribed = new Array<number>(m.count).fill(0);
  caughtUp = new Array<number>(m.count).fill(0);
  attempted = new Array<number>(m.count).fill(0);
  for (let i = 0; i < m.count; i++) {
    // A `ws` subclass per client that notes the frames the client library consumes, without changing them.
    const Probe = class extends WebSocket {
      constructor(u: string, p: string[]) {
        super(u, p);
        attempted[i] = now();
        this.on('message', (d) => {
          const s = d.toString();
          if (s.startsWith('{"type":"welcome"')) welcomed[i] = now();
          else if (s.startsWith('{"type":"subscribed"')) subscribed[i] = now();
        });
      }
    };
    const c = createRelayClient({ url: m.url, token: m.tokens[(m.first + i) % m.tokens.length]!, WebSocket: Probe as never, transport: m.transport ?? 'auto' });
    c.subscribe('orders', {}, {
      onChange: (change) => {
        if (Number((change.row as { mid: string | number }).mid) === marker && !caughtUp[i]) caughtUp[i] = now();
      },
    });
    clients.push(c);
    if (i % 100 === 99) await sleep(20); // a gentle ramp: the first connect is not what is measured
  }
  while (subscribed.some((t) => t === 0)) await sleep(50);
  send({ type: 'subscribed' });
}

process.on('message', (m: Command) => {
  if (m.type === 'start') void start(m);
  else if (m.type === 'reset') {
    marker = m.marker;
    welcomed.fill(0);
    subscribed.fill(0);
    caughtUp.fill(0);
    loop.reset();
    loop.enable();
    usage = process.cpuUsage();
    since = now();
  } else if (m.type === 'report') {
    const u = process.cpuUsage(usage);
    send({ type: 'report', welcomed, subscribed, caughtUp, attempted, loopP99: loop.percentile(99) / 1e6, cpu: (u.user + u.system) / 1000 / (now() - since) });
  } else {
    for (const c of clients) c.close();
    setTimeout(() => process.exit(0), 200);
  }
});
send({ type: 'ready' });
