// bench:sse: Server-Sent Events next to WebSocket on one relay, interleaved: latency, relay CPU per delivery, memory per idle stream.
import os from 'node:os';
import pg from 'pg';
import { sleep, until } from '../../db/testing/wait.js';
import type { Flags } from '../lib/args.js';
import type { Benchmark } from '../lib/benchmark.js';
import { Fleet, runWriter } from '../lib/fleet.js';
import { bytes, int, ms, ratio, table } from '../lib/format.js';
import { backgroundLoad, busyPercent, cpuTicks, describeMachine, machine } from '../lib/machine.js';
import { cpuSeconds, fileLimit, loadCpu, rssBytes, taskset } from '../lib/processes.js';
import { saveRaw, writeSection } from '../lib/results.js';
import { median } from '../lib/median.js';
import { newSecret, tokensFor } from '../lib/session.js';
import type { BenchPostgres } from '../lib/postgres.js';
import { prepareDatabase, startTarget, type TargetServer } from '../lib/targets.js';
import type { Transport } from '../load/messages.js';

interface SseOptions {
  server: 'uws' | 'ws';
  subscribers: number;
  tenants: number;
  rate: number;
  seconds: number;
  warmup: number;
  mix: [number, number, number];
  idle: number;
  settle: number;
  rounds: number;
  workers: number;
  parts: string[];
}

function options(flags: Flags): SseOptions {
  const o = {
    server: flags.str('server', 'uws') as SseOptions['server'],
    subscribers: flags.num('subscribers', 500),
    tenants: flags.num('tenants', 50),
    rate: flags.num('rate', 100),
    seconds: flags.num('seconds', 10),
    warmup: flags.num('warmup', 1),
    mix: flags.list('mix', ['70', '20', '10']).map(Number) as [number, number, number],
    idle: flags.num('idle', 5000),
    settle: flags.num('settle', 5),
    rounds: flags.num('rounds', 3),
    workers: flags.num('workers', 2),
    parts: flags.list('parts', ['latency', 'memory']),
  };
  if (o.server !== 'uws' && o.server !== 'ws') throw new Error(`--server takes uws (native uWebSockets.js) or ws (the fallback); got ${JSON.stringify(o.server)}.`);
  for (const [name, v] of Object.entries({ subscribers: o.subscribers, tenants: o.tenants, rounds: o.rounds, workers: o.workers, idle: o.idle })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a whole number, at least 1; got ${v}.`);
  }
  if (!(o.rate > 0) || !(o.seconds > 0)) throw new Error('--rate and --seconds must be above 0.');
  if (o.mix.length !== 3 || o.mix.some((x) => !Number.isFinite(x)) || Math.abs(o.mix[0] + o.mix[1] + o.mix[2] - 100) > 1e-9) throw new Error('--mix must be three percentages (inserts,updates,deletes) adding up to 100.');
  for (const p of o.parts) if (p !== 'latency' && p !== 'memory') throw new Error(`--parts takes latency and memory; got ${JSON.stringify(p)}.`);
  if (o.parts.includes('memory') && fileLimit(o.idle + 4096) < o.idle + 4096) throw new Error(`--idle ${o.idle} needs an open-files limit of ${o.idle + 4096}; here it is ${fileLimit(o.idle + 4096)} (\`ulimit -Hn\`; raising it needs root with CAP_SYS_RESOURCE).`);
  return o;
}

const transports: Transport[] = ['websocket', 'sse'];
const label: Record<Transport, string> = { websocket: 'WebSocket (`/ws`)', sse: 'SSE (`/sse`)' };

interface LatencyResult {
  connections: number;
  failed: number;
  errors: string[];
  transactions: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  wrongTenant: number;
  closed: number;
  p50: number;
  p99: number;
  max: number;
  deliveriesPerSec: number;
  /** Relay CPU (user + system) over the writer's run and the drain: % of one core, and per delivery received (warm-up ones too), µs. */
  relayCpu: number;
  relayCpuUs: number;
  /** CPU of the load workers, % of one core, and how busy the load CPU was altogether (writer and Postgres too). */
  loadCpu: number;
  loadCoreBusy: number;
}

interface MemoryResult {
  connections: number;
  failed: number;
  errors: string[];
  rss0: number;
  rssN: number;
  rssPer: number;
  heapPer: number;
}

interface Run<T> {
  transport: Transport;
  round: number;
  /** % of all CPUs busy over the second before the run. */
  background: number;
  result?: T;
  error?: string;
}

let midBase = 0;

/** One latency measurement: K subscriptions of `transport` on the running relay, R tx/s for D s, every delivery accounted. */
async function latencyRun(o: SseOptions, relay: TargetServer, fleet: Fleet, databaseUrl: string, tokens: Record<string, string>, transport: Transport, round: number): Promise<LatencyResult> {
  try {
    const c = await fleet.connect('pgrelay', relay.baseUrl, tokens, o.subscribers, o.tenants, { transport });
    if (c.opened < o.subscribers) throw new Error(`${c.opened} of ${o.subscribers} ${transport} subscriptions opened (${c.errors.join('; ')})`);
    await fleet.reset();
    // a row nobody counts, to see the stream flow before the clock starts
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    await db.query(`insert into orders (tenant_id, customer, amount, status) values ('t0', 'probe', 0, 'probe')`).finally(() => db.end());
    await until(async () => (await fleet.progress()).warmup > 0, { what: `the probe row to reach a ${transport} subscription`, timeoutMs: 10_000, intervalMs: 50 });
    const cpu0 = { relay: cpuSeconds(relay.process.pid), load: fleet.cpuSeconds(), core: cpuTicks(taskset ? loadCpu : undefined), at: performance.now(), seen: await fleet.progress() };
    midBase += 10_000_000;
    const w = await runWriter({
      cmd: 'run', databaseUrl, tenants: Array.from({ length: o.tenants }, (_, i) => `t${i}`), rate: o.rate, duration: o.seconds, warmup: o.warmup, mix: o.mix, midBase,
      connections: Math.min(32, Math.max(4, Math.ceil(o.rate / 250))),
      // the same operations for both transports of a round
      seed: round,
    });
    if (w.errors.length) process.stderr.write(`writer: ${w.errors.join('; ')}\n`);
    let expected = 0;
    for (const [tenant, keys] of Object.entries(w.committed)) expected += keys.length * (fleet.perTenant.get(tenant) ?? 0);
    // drain: until everything arrived, or 3 s without progress (the rest is lost)
    const wroteAt = performance.now();
    let last = -1;
    let lastChange = wroteAt;
    let seen = cpu0.seen;
    for (;;) {
      seen = await fleet.progress();
      const now = performance.now();
      if (seen.received >= expected) break;
      if (seen.received !== last) (last = seen.received), (lastChange = now);
      if (now - lastChange > 3000 || now - wroteAt > 60_000) break;
      await sleep(20);
    }
    if (!relay.process.alive) throw new Error(`the relay exited:\n${relay.process.output()}`);
    const wall = (performance.now() - cpu0.at) / 1000;
    const relayCpu = cpuSeconds(relay.process.pid) - cpu0.relay;
    const loadUse = ((fleet.cpuSeconds() - cpu0.load) / wall) * 100;
    const loadCoreBusy = busyPercent(cpu0.core, cpuTicks(taskset ? loadCpu : undefined));
    const s = await fleet.collect(w.committed);
    const received = seen.received + seen.warmup - cpu0.seen.received - cpu0.seen.warmup;
    return {
      connections: s.connections, failed: c.failed, errors: c.errors, transactions: w.transactions,
      expected: s.expected, delivered: s.delivered, lost: s.lost, duplicates: s.duplicates, wrongTenant: s.wrongTenant, closed: s.closed,
      p50: s.latency.percentile(50) / 1000, p99: s.latency.percentile(99) / 1000, max: s.latency.max / 1000,
      deliveriesPerSec: s.delivered / Math.max(w.elapsed, 1e-3),
      relayCpu: (relayCpu / wall) * 100,
      relayCpuUs: (relayCpu / Math.max(1, received)) * 1e6,
      loadCpu: loadUse,
      loadCoreBusy,
    };
  } finally {
    await fleet.drop();
  }
}

/** Memory after `settleMs`, then full GCs (SIGUSR2 → gc()) 2 s apart until 3 readings agree within 1 % (at most 10): V8 shrinks its heap over several GCs. */
async function settledMemory(relay: TargetServer, settleMs: number): Promise<{ rss: number; heapUsed: number }> {
  await sleep(settleMs);
  const readings: Array<{ rss: number; heapTotal: number; heapUsed: number }> = [];
  const within = (xs: number[]) => Math.max(...xs) - Math.min(...xs) <= 0.01 * Math.max(...xs);
  for (let i = 0; i < 10; i++) {
    const m = await relay.gc();
    if (!m) throw new Error(`the relay did not report its memory after a GC:\n${relay.process.output().slice(-2000)}`);
    await sleep(2000);
    readings.push({ rss: rssBytes(relay.process.pid), heapTotal: m.heapTotal, heapUsed: m.heapUsed });
    const last = readings.slice(-3);
    if (last.length === 3 && within(last.map((r) => r.rss)) && within(last.map((r) => r.heapTotal))) break;
  }
  return readings[readings.length - 1]!;
}

/** One memory measurement: a fresh relay, 200 subscriptions of `transport` opened and closed, then N idle ones. */
async function memoryRun(o: SseOptions, fleet: Fleet, databaseUrl: string, secret: string, tokens: Record<string, string>, transport: Transport): Promise<MemoryResult> {
  const relay = await startTarget('pgrelay', { databaseUrl, jwtSecret: secret, nofile: o.idle + 4096, env: { RELAY_SERVER: o.server, LOG_FORMAT: 'json' } });
  try {
    // one-off costs of the first connections (lazily compiled handlers, first buffers) fall before the zero point
    await fleet.connect('pgrelay', relay.baseUrl, tokens, Math.min(200, o.idle), o.tenants, { transport });
    await fleet.drop();
    const zero = await settledMemory(relay, 2000);
    const c = await fleet.connect('pgrelay', relay.baseUrl, tokens, o.idle, o.tenants, { transport });
    if (c.opened === 0) throw new Error(`no ${transport} subscription opened (${c.errors.join('; ')})`);
    process.stderr.write(`memory: ${transport}: ${int(c.opened)} idle subscriptions\n`);
    const full = await settledMemory(relay, o.settle * 1000);
    return { connections: c.opened, failed: c.failed, errors: c.errors, rss0: zero.rss, rssN: full.rss, rssPer: (full.rss - zero.rss) / c.opened, heapPer: (full.heapUsed - zero.heapUsed) / c.opened };
  } finally {
    await fleet.drop();
    await relay.stop();
  }
}

/** Every round runs each transport once; the order alternates (WebSocket first in odd rounds) so that drift falls on both alike. */
async function interleaved<T>(rounds: number, what: string, measure: (t: Transport, round: number) => Promise<T>): Promise<Array<Run<T>>> {
  const out: Array<Run<T>> = [];
  for (let round = 1; round <= rounds; round++) {
    for (const transport of round % 2 ? transports : [...transports].reverse()) {
      const background = await backgroundLoad();
      process.stderr.write(`${what}: round ${round} of ${rounds}, ${transport} (machine ${background.toFixed(0)} % busy just before)...\n`);
      try {
        out.push({ transport, round, background, result: await measure(transport, round) });
      } catch (err) {
        const error = err instanceof Error ? err.message.split('\n')[0]! : String(err);
        process.stderr.write(`${what}: ${transport}, round ${round} failed: ${err instanceof Error ? err.stack : String(err)}\n`);
        out.push({ transport, round, background, error });
      }
    }
  }
  return out;
}

interface Column<T> {
  name: string;
  value: (r: T) => number;
  format: (v: number) => string;
  /** Added up over the rounds (losses, failures) instead of a median. */
  sum?: boolean;
  /** No SSE / WebSocket ratio (a setting, not a result). */
  noRatio?: boolean;
}

/** One row per transport (median, then min–max over its rounds), then SSE / WebSocket of the medians. */
function sideBySide<T>(runs: ReadonlyArray<Run<T>>, rounds: number, columns: ReadonlyArray<Column<T>>): string {
  const done = (t: Transport) => runs.filter((r) => r.transport === t && r.result !== undefined).map((r) => r.result!);
  const cell = (t: Transport, c: Column<T>) => {
    const xs = done(t).map(c.value).filter(Number.isFinite);
    if (xs.length === 0) return 'n/a';
    if (c.sum) return c.format(xs.reduce((a, b) => a + b, 0));
    return xs.length === 1 ? c.format(xs[0]!) : `${c.format(median(xs))} (${c.format(Math.min(...xs))}–${c.format(Math.max(...xs))})`;
  };
  const rows = transports.map((t) => {
    const bg = runs.filter((r) => r.transport === t).map((r) => r.background);
    return [label[t], `${done(t).length} of ${rounds}`, `${median(bg).toFixed(0)} % (${Math.min(...bg).toFixed(0)}–${Math.max(...bg).toFixed(0)} %)`, ...columns.map((c) => cell(t, c))];
  });
  rows.push(['SSE / WebSocket (medians)', '', '', ...columns.map((c) => (c.sum || c.noRatio ? '' : ratio(median(done('sse').map(c.value)), median(done('websocket').map(c.value)))))]);
  return table(['transport', 'runs', 'machine busy before', ...columns.map((c) => c.name)], rows);
}

const failures = (runs: ReadonlyArray<Run<unknown>>) => runs.filter((r) => r.error !== undefined).map((r) => `- ${label[r.transport]}, round ${r.round}: did not run: ${r.error}.`);

async function run(flags: Flags, postgres: BenchPostgres): Promise<void> {
  const o = options(flags);
  const { server, subscribers, tenants, rate, seconds, warmup, mix, idle, settle, rounds, workers: workerCount, parts } = o;
  const startedAt = performance.now();
  const box = machine();
  const serverName = server === 'uws' ? 'native uWebSockets.js' : 'the `ws` + `node:http` fallback';
  const secret = newSecret();
  const tokens = await tokensFor(secret, tenants);
  // each worker its own loopback source address once sockets could outnumber the ephemeral ports of one
  const perWorker = Math.ceil(Math.max(subscribers, idle) / workerCount);
  const fleet = new Fleet(workerCount, { nofile: perWorker + 4096, manyAddresses: perWorker * workerCount > 20_000 });
  const loadBefore = os.loadavg()[0]!;
  let serverLine = '';
  let latencyRuns: Array<Run<LatencyResult>> = [];
  let memoryRuns: Array<Run<MemoryResult>> = [];

  if (parts.includes('latency')) {
    const url = await postgres.createDatabase('sse_bench_latency');
    await prepareDatabase(url, 'pgrelay');
    const relay = await startTarget('pgrelay', { databaseUrl: url, jwtSecret: secret, nofile: subscribers + 4096, env: { RELAY_SERVER: server, LOG_FORMAT: 'json' } });
    serverLine = /"msg":"([^"]*(?:uWebSockets\.js build in use|ws fallback)[^"]*)"/.exec(relay.process.output())?.[1] ?? '';
    try {
      latencyRuns = await interleaved(rounds, 'latency', (t, round) => latencyRun(o, relay, fleet, url, tokens, t, round));
    } finally {
      await relay.stop();
    }
  }
  if (parts.includes('memory')) {
    const url = await postgres.createDatabase('sse_bench_memory');
    await prepareDatabase(url, 'pgrelay');
    memoryRuns = await interleaved(rounds, 'memory', (t) => memoryRun(o, fleet, url, secret, tokens, t));
  }
  await fleet.close();
  const loadAfter = os.loadavg()[0]!;
  await saveRaw(`sse-${server}`, { server, subscribers, tenants, rate, seconds, warmup, mix, idle, settle, rounds, latencyRuns, memoryRuns });

  const command = `npm run bench:sse -- --server ${server} --subscribers ${subscribers} --tenants ${tenants} --rate ${rate} --seconds ${seconds} --idle ${idle} --rounds ${rounds}` +
    `${warmup !== 1 ? ` --warmup ${warmup}` : ''}${mix.join(',') !== '70,20,10' ? ` --mix ${mix.join(',')}` : ''}${settle !== 5 ? ` --settle ${settle}` : ''}${workerCount !== 2 ? ` --workers ${workerCount}` : ''}` +
    `${parts.length < 2 ? ` --parts ${parts.join(',')}` : ''}`;
  const out: string[] = [
    `## Server-Sent Events next to WebSocket: latency and memory per idle stream (RELAY_SERVER=${server})`,
    '',
    `\`${command}\`, ${new Date().toISOString().slice(0, 10)}. The relay (\`relay/cli.ts start\`, ${serverName}${serverLine ? `: "${serverLine}"` : ''}) pinned to its own CPU; ` +
      `the subscriptions live in ${workerCount} load processes (\`bench/load/clients.ts\`: \`ws\` for WebSocket, \`node:http\` and the client's event parser for SSE) on the other CPU, with the writer and Postgres. ` +
      `${rounds} round${rounds === 1 ? '' : 's'}, the transports interleaved in each (WebSocket first in odd rounds, SSE first in even ones); each figure is the median over the rounds, with min–max.`,
    '',
    `Machine: ${describeMachine(box)}. Load average (1 min) ${loadBefore.toFixed(1)} before the run, ${loadAfter.toFixed(1)} after, on ${box.nproc} cores. Postgres: ${postgres.description}.`,
  ];
  if (parts.includes('latency')) {
    out.push(
      '',
      `**Latency.** One relay process for every run. ${int(subscribers)} subscriptions to \`orders\` over ${tenants} tenants (each sees only its tenant's rows), WebSocket (\`subscribe\` message) or SSE (\`GET /sse?table=public.orders\`); ` +
        `a writer commits ${rate} single-row transactions/s for ${seconds} s after ${warmup} s of warm-up (${mix.join(' / ')} % inserts / updates / deletes). ` +
        `Latency = receipt − the row's \`ts\` (\`clock_timestamp()\` when the statement wrote it, one host clock), over every insert and update delivered; every delivery accounted (lost, duplicated, wrong tenant). ` +
        `Relay CPU = its CPU (/proc, 10 ms ticks) from the writer's start to the last delivery, in % of one core and ÷ deliveries (warm-up ones too): per delivery it includes the work per transaction (reading the log, rendering), so it falls as subscriptions per tenant grow. Load processes: their CPU in % of one core; load CPU busy: that whole CPU (writer and Postgres too).`,
      '',
      sideBySide<LatencyResult>(latencyRuns, rounds, [
        { name: 'p50 ms', value: (r) => r.p50, format: ms },
        { name: 'p99 ms', value: (r) => r.p99, format: ms },
        { name: 'max ms', value: (r) => r.max, format: ms },
        { name: 'deliveries/s', value: (r) => r.deliveriesPerSec, format: int },
        { name: 'relay CPU', value: (r) => r.relayCpu, format: (v) => `${v.toFixed(1)} %` },
        { name: 'relay CPU per delivery', value: (r) => r.relayCpuUs, format: (v) => `${v < 100 ? v.toFixed(1) : v.toFixed(0)} µs` },
        { name: 'load processes CPU', value: (r) => r.loadCpu, format: (v) => `${v.toFixed(0)} %`, noRatio: true },
        { name: 'load CPU busy', value: (r) => r.loadCoreBusy, format: (v) => `${v.toFixed(0)} %`, noRatio: true },
        { name: 'lost / dup / wrong tenant (all rounds)', value: (r) => r.lost + r.duplicates + r.wrongTenant, format: int, sum: true },
      ]),
    );
    const off = latencyRuns.flatMap((r) => (r.result && (r.result.lost || r.result.duplicates || r.result.wrongTenant || r.result.closed)
      ? [`- ${label[r.transport]}, round ${r.round}: ${int(r.result.lost)} lost, ${int(r.result.duplicates)} duplicated, ${int(r.result.wrongTenant)} of another tenant, ${int(r.result.closed)} connections closed, of ${int(r.result.expected)} expected.`]
      : []));
    if (off.length || failures(latencyRuns).length) out.push('', ...off, ...failures(latencyRuns));
  }
  if (parts.includes('memory')) {
    out.push(
      '',
      `**Memory per idle stream.** A fresh relay process per run (\`--expose-gc\` and the SIGUSR2 → \`gc()\` hook of \`bench/lib/gc-on-signal.ts\`): 200 subscriptions of the transport opened and closed (one-off costs fall before the zero point), ` +
        `then ${int(idle)} idle subscriptions to \`orders\` over ${tenants} tenants. RSS (VmRSS) and V8 heapUsed read 2 s after the last subscription (${settle} s for N), then after full GCs 2 s apart until 3 readings agree within 1 %. ` +
        `Per stream = (at N − at 0) / N. The V8 heap holds the relay's JavaScript side of each stream (and, on the fallback, the \`ws\` and \`node:http\` sockets themselves); uWebSockets.js keeps its sockets outside it.`,
      '',
      sideBySide<MemoryResult>(memoryRuns, rounds, [
        { name: 'streams', value: (r) => r.connections, format: int, noRatio: true },
        { name: 'RSS at 0', value: (r) => r.rss0, format: bytes, noRatio: true },
        { name: 'RSS at N', value: (r) => r.rssN, format: bytes, noRatio: true },
        { name: 'RSS per stream', value: (r) => r.rssPer, format: bytes },
        { name: 'V8 heap per stream', value: (r) => r.heapPer, format: bytes },
        { name: 'failed (all rounds)', value: (r) => r.failed, format: int, sum: true },
      ]),
    );
    if (failures(memoryRuns).length) out.push('', ...failures(memoryRuns));
  }
  const md = out.join('\n');
  console.log(md);
  await writeSection(`sse-${server}`, md);
  process.stderr.write(`bench:sse took ${((performance.now() - startedAt) / 60_000).toFixed(1)} min\n`);
}

/**
 * Server-Sent Events next to WebSockets on the same relay (`npm run bench:sse`): commit→receipt latency and relay CPU per
 * delivery with K subscribers on one relay process, and memory per idle subscription (RSS and V8 heap after a full GC) on
 * a fresh relay per run; the two transports interleaved round by round, medians with min–max. One server implementation per run.
 */
export const sse: Benchmark = {
  name: 'sse',
  title: 'Server-Sent Events next to WebSocket on one relay: latency, relay CPU per delivery, memory per idle stream',
  usage: `--server uws|ws --subscribers 500 --tenants 50 --rate 100 --seconds 10 --warmup 1 --mix 70,20,10
--idle 5000 --settle 5 --rounds 3 --workers 2 --parts latency,memory`,
  run: async (flags, ctx) => run(flags, await ctx.postgres()),
};
