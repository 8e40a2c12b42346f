// Benchmark 3: server memory per idle, authenticated, subscribed socket: RSS growth from 0 to N sockets, read after a settle time and a full GC.
import { sleep } from '../../db/testing/wait.js';
import type { Flags } from '../lib/args.js';
import { onSession, type Benchmark } from '../lib/benchmark.js';
import { targetColors, writeChart } from '../lib/charts.js';
import { Fleet } from '../lib/fleet.js';
import { bytes, int, ratio, table } from '../lib/format.js';
import { fileLimit, rssBytes } from '../lib/processes.js';
import { goalsTable, publish, sectionHeader, type Goal } from '../lib/report.js';
import { saveRaw } from '../lib/results.js';
import { interleave, parseServers, publishServerRuns, serversUsage, serverTable, type ServerRounds } from '../lib/servers.js';
import { tokensFor, withTarget, type RunContext } from '../lib/session.js';
import { parseTargets, targetLabel, targetsUsage, type TargetName, type TargetServer } from '../lib/targets.js';

export const memoryDefaults = { n: 10_000, nPgrelay: 50_000, t: 50, settle: 5 };
export const memoryQuick = { n: 1000, nPgrelay: 0, t: 10, settle: 2 };

/** Sockets one load process holds at most, and the point past which they need their own loopback source addresses (ephemeral ports). */
const perWorker = 12_500;
const portsPerAddress = 20_000;

export interface MemoryPoint {
  sockets: number;
  rss: number;
  /** V8 heap in use just after the GC (informative: RSS is what is compared). */
  heapUsed: number;
}

export interface MemoryResult {
  target: TargetName;
  n: number;
  points: MemoryPoint[];
  /** (RSS at N − RSS at 0) / N. */
  perSocket: number;
  /** Least-squares slope over all points. */
  slope: number;
  /** (RSS at N − RSS at N/4) / (3N/4): leaves out one-off growth (heap sizing, first buffers) of the first sockets. */
  marginal: number;
  /** V8 heap in use per socket, (at N − at 0) / N. */
  heapPerSocket: number;
  failed: number;
  errors: string[];
}


/**
 * Memory after `settleMs`, then full GCs (SIGUSR2 → gc(), the same hook in all three servers) 2 s apart until `agree`
 * readings in a row have the same RSS and V8 heap size within 1 % (at most 12): V8 shrinks its heap over several GCs.
 */
async function settledMemory(server: TargetServer, settleMs: number, agree: number): Promise<MemoryPoint> {
  await sleep(settleMs);
  const readings: Array<{ rss: number; heapTotal: number; heapUsed: number }> = [];
  const within = (xs: number[]) => Math.max(...xs) - Math.min(...xs) <= 0.01 * Math.max(...xs);
  for (let i = 0; i < 12; i++) {
    const m = await server.gc();
    await sleep(2000);
    readings.push({ rss: rssBytes(server.process.pid), heapTotal: m?.heapTotal ?? 0, heapUsed: m?.heapUsed ?? 0 });
    const last = readings.slice(-agree);
    if (last.length === agree && within(last.map((r) => r.rss)) && within(last.map((r) => r.heapTotal))) break;
  }
  const r = readings[readings.length - 1]!;
  return { sockets: 0, rss: r.rss, heapUsed: r.heapUsed };
}

function slopeOf(points: MemoryPoint[]): number {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.sockets, 0) / n;
  const my = points.reduce((a, p) => a + p.rss, 0) / n;
  const num = points.reduce((a, p) => a + (p.sockets - mx) * (p.rss - my), 0);
  const den = points.reduce((a, p) => a + (p.sockets - mx) ** 2, 0);
  return den ? num / den : NaN;
}

async function measureMemory(ctx: RunContext, target: TargetName, n: number, t: number, settle: number, env: NodeJS.ProcessEnv = {}): Promise<MemoryResult> {
  const tokens = await tokensFor(ctx.secret, t);
  const workers = Math.max(1, Math.ceil(n / perWorker));
  return withTarget(ctx, target, { nofile: n + 4096, env }, async ({ server }) => {
    // One-off costs of the first sockets (lazily compiled handlers, first buffers) are paid before the zero point, alike for all three.
    const primer = new Fleet(1);
    try {
      await primer.connect(target, server.baseUrl, tokens, Math.min(200, n), t);
    } finally {
      await primer.close();
    }
    const fleet = new Fleet(workers, { nofile: Math.ceil(n / workers) + 4096, manyAddresses: n > portsPerAddress });
    try {
      const points: MemoryPoint[] = [await settledMemory(server, 2000, 4)];
      const out: MemoryResult = { target, n, points, perSocket: NaN, slope: NaN, marginal: NaN, heapPerSocket: NaN, failed: 0, errors: [] };
      for (const q of [0.25, 0.5, 0.75, 1]) {
        const c = await fleet.connect(target, server.baseUrl, tokens, Math.round(n * q), t);
        out.failed += c.failed;
        for (const e of c.errors) if (out.errors.length < 5 && !out.errors.includes(e)) out.errors.push(e);
        if (fleet.connections === 0) throw new Error(`no connection opened (${c.errors.join('; ')})`);
        if (!server.process.alive) throw new Error(`the server exited at ${fleet.connections} sockets:\n${server.process.output()}`);
        process.stderr.write(`memory: ${target}: ${int(fleet.connections)} sockets\n`);
        points.push({ ...(await settledMemory(server, q === 1 ? settle * 1000 : 1000, q === 1 ? 3 : 2)), sockets: fleet.connections });
      }
      const last = points[points.length - 1]!;
      out.perSocket = (last.rss - points[0]!.rss) / last.sockets;
      out.slope = slopeOf(points);
      const quarter = points[1]!;
      out.marginal = (last.rss - quarter.rss) / (last.sockets - quarter.sockets);
      out.heapPerSocket = (last.heapUsed - points[0]!.heapUsed) / last.sockets;
      return out;
    } finally {
      await fleet.close();
    }
  });
}

async function memoryBenchmark(ctx: RunContext, flags: Flags, command: string): Promise<void> {
  const base = flags.bool('quick') ? memoryQuick : memoryDefaults;
  const n = flags.num('n', base.n);
  const nPgrelay = flags.num('n-pgrelay', base.nPgrelay);
  const t = flags.num('t', base.t);
  const settle = flags.num('settle', base.settle);
  const servers = parseServers(flags);
  if (servers) return memoryByServer(ctx, { n, t, settle }, servers, command);
  const targets = parseTargets(flags.list('targets', ['pgrelay', 'socketio', 'ws']));
  const results: MemoryResult[] = [];
  const missing: string[] = [];
  const runs: Array<[TargetName, number]> = targets.map((x) => [x, n]);
  if (targets.includes('pgrelay') && nPgrelay > n) runs.push(['pgrelay', nPgrelay]);
  for (const [target, count] of runs) {
    // The server holds one descriptor per socket: without a high enough open-files limit the run can only fail.
    if (fileLimit(count + 1024) < count + 1024) {
      missing.push(`- ${targetLabel[target]} at ${int(count)} sockets not run: the open-files limit here is ${int(fileLimit(count + 1024))} and cannot be raised (\`ulimit -Hn\`; raising it needs root with CAP_SYS_RESOURCE).`);
      continue;
    }
    try {
      results.push(await measureMemory(ctx, target, count, t, settle));
    } catch (err) {
      const why = err instanceof Error ? err.message.split('\n')[0]! : String(err);
      missing.push(`- ${targetLabel[target]} at ${int(count)} sockets did not run: ${why}.`);
      process.stderr.write(`memory: ${target} at ${count} did not run: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
  await saveRaw('memory', { n, nPgrelay, t, settle, results, missing });

  const at = (x: TargetName, count = n) => results.find((r) => r.target === x && r.n === count);
  const p = at('pgrelay');
  const a = at('socketio');
  const b = at('ws');
  const rows = results.map((r) => [
    targetLabel[r.target],
    int(r.points[r.points.length - 1]!.sockets),
    bytes(r.points[0]!.rss),
    bytes(r.points[r.points.length - 1]!.rss),
    bytes(r.perSocket),
    bytes(r.slope),
    bytes(r.marginal),
    bytes(r.heapPerSocket),
    int(r.failed),
  ]);
  // A ratio means something only when both servers grew.
  // When RSS does not grow measurably (its noise is larger than N sockets' worth), an upper bound stands in for it: the
  // V8 heap per socket (JavaScript state) plus the RSS slope if positive (native uWS state), marked "≤".
  const bound = (x: MemoryResult) => (x.perSocket > 0 ? x.perSocket : x.heapPerSocket + Math.max(0, x.slope));
  const shown = (x: MemoryResult) => (x.perSocket > 0 ? bytes(x.perSocket) : `≤ ${bytes(bound(x))} (V8 heap ${bytes(x.heapPerSocket)} + RSS slope ${bytes(Math.max(0, x.slope))})`);
  const grown = (x?: MemoryResult, y?: MemoryResult) => (x && y && y.perSocket > 0 ? `${x.perSocket > 0 ? '' : '≤ '}${ratio(bound(x), y.perSocket)}` : 'n/a');
  const goals: Goal[] = [
    { name: 'pgrelay ≤ 4 kB per socket', value: p ? shown(p) : 'n/a', ok: p ? bound(p) <= 4096 && p.failed === 0 : undefined },
    { name: 'pgrelay ≤ 0.2× A per socket', value: grown(p, a), ok: p && a && a.perSocket > 0 ? bound(p) <= 0.2 * a.perSocket : undefined },
  ];
  const big = results.find((r) => r.target === 'pgrelay' && r.n === nPgrelay && nPgrelay > n);
  if (big) goals.push({ name: `pgrelay ≤ 4 kB per socket at ${int(nPgrelay)}`, value: bytes(big.perSocket), ok: big.perSocket <= 4096 && big.failed === 0 });

  const chart = results.length
    ? await writeChart('memory', {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        title: 'Server RSS growth with idle subscribed sockets',
        data: { values: results.flatMap((r) => r.points.map((pt) => ({ target: targetLabel[r.target], run: `${targetLabel[r.target]} to ${r.n}`, sockets: pt.sockets, mib: (pt.rss - r.points[0]!.rss) / 2 ** 20 }))) },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'sockets', type: 'quantitative', title: 'idle subscribed sockets' },
          y: { field: 'mib', type: 'quantitative', title: 'RSS growth (MiB)' },
          color: targetColors,
          detail: { field: 'run' },
        },
        width: 420,
        height: 280,
      })
    : undefined;
  const shrank = results.filter((r) => !(r.perSocket > 0)).map((r) => `- ${targetLabel[r.target]}: RSS did not grow measurably from 0 to ${int(r.n)} sockets (the process's own noise is larger); the goals use the upper bound V8 heap per socket + positive RSS slope = ${bytes(bound(r))}.`);
  const md = [
    sectionHeader('memory', command, ctx),
    `- Each server alone (fresh process), N authenticated sockets over ${t} tenants subscribed to \`orders\` (pgrelay: \`subscribed\` received; A: joined its tenant's room; B: in its tenant's set), connected in four steps after 200 sockets were opened and closed (so that one-off costs of the first sockets fall before the zero point). RSS = VmRSS of /proc/<pid>/status, read ${settle} s after the last socket (1 s after the others), then full GCs 2 s apart (all three servers run with --expose-gc and the same SIGUSR2 → gc() hook) until RSS and V8 heap size agree within 1 % over 4 readings at 0, 3 at N, 2 in between: V8 shrinks its heap over several GCs. Per socket = (RSS at N − RSS at 0) / N, what the goals use; slope = least squares over the five points; marginal = growth from N/4 to N per socket, without the one-off growth of the first sockets; V8 heap = heapUsed after GC, informative only (uWS keeps its sockets outside the V8 heap).`,
    '',
    table(['target', 'sockets', 'RSS at 0', 'RSS at N', 'per socket', 'slope', 'marginal N/4 → N', 'V8 heap per socket', 'failed'], rows),
    '',
    table(['per socket', 'pgrelay / A', 'pgrelay / B'], [['RSS bytes', grown(p, a), grown(p, b)]]),
    '',
    goalsTable(goals),
    ...(chart ? ['', `![memory](${chart})`] : []),
    ...(missing.length || shrank.length ? ['', ...missing, ...shrank] : []),
  ].join('\n');
  await publish('memory', md);
}

/** `--servers uws,ws`: pgrelay's memory per idle socket on each server implementation, interleaved, `--repeat` rounds. */
async function memoryByServer(ctx: RunContext, o: { n: number; t: number; settle: number }, rounds: ServerRounds, command: string): Promise<void> {
  if (fileLimit(o.n + 1024) < o.n + 1024) throw new Error(`memory: ${int(o.n)} sockets need an open-files limit of ${int(o.n + 1024)}; here it is ${int(fileLimit(o.n + 1024))}.`);
  const runs = await interleave(rounds, 'memory', (server) => measureMemory(ctx, 'pgrelay', o.n, o.t, o.settle, { RELAY_SERVER: server }));
  await saveRaw('memory-servers', { ...o, rounds, runs });
  await publishServerRuns('memoryServers', ctx, command, runs, [
    `- Measured as in section 3: ${int(o.n)} authenticated sockets over ${o.t} tenants, each subscribed to \`orders\`, connected in four steps after 200 were opened and closed; RSS (VmRSS) read ${o.settle} s after the last socket, after full GCs until RSS and V8 heap agree within 1 %. Per socket = (RSS at N − RSS at 0) / N; marginal = growth from N/4 to N per socket; V8 heap per socket = heapUsed growth (uws keeps its sockets outside the V8 heap, ws inside). ${rounds.repeat} rounds, the servers interleaved in each (${rounds.servers.join(', ')}); each figure is the median over the rounds, with min–max.`,
    '',
    serverTable<MemoryResult>(runs, rounds, [
      { name: 'RSS at 0', value: (r) => r.points[0]!.rss, format: bytes },
      { name: 'RSS at N', value: (r) => r.points[r.points.length - 1]!.rss, format: bytes },
      { name: 'per socket', value: (r) => r.perSocket, format: bytes },
      { name: 'marginal N/4 → N', value: (r) => r.marginal, format: bytes },
      { name: 'V8 heap per socket', value: (r) => r.heapPerSocket, format: bytes },
      { name: 'failed connections (all rounds)', value: (r) => r.failed, format: int, sum: true },
    ]),
  ]);
}

export const memory: Benchmark = {
  name: 'memory',
  title: 'Server memory per idle, authenticated, subscribed socket after a full GC (sections 3 and 8)',
  usage: `--n 10000 --n-pgrelay 50000 (0: skip) --t 50 --settle 5
${targetsUsage}
${serversUsage}`,
  run: onSession(memoryBenchmark),
};
