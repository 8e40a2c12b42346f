// Fan-out mode --compression (issue 14): RELAY_COMPRESSION off and on, interleaved and repeated on the same relay build; bytes on the wire, CPU, latency and deliveries per delivery.
import { sleep } from '../../../db/testing/wait.js';
import type { Flags } from '../../lib/args.js';
import { Fleet } from '../../lib/fleet.js';
import { int, ms, ratio, table } from '../../lib/format.js';
import { backgroundLoad } from '../../lib/machine.js';
import { measure, type LoadResult } from '../../lib/measure.js';
import { publish, sectionHeader } from '../../lib/report.js';
import { saveRaw } from '../../lib/results.js';
import { median } from '../../lib/median.js';
import { tokensFor, withTarget, type RunContext } from '../../lib/session.js';
import { parseMix } from '../latency.js';

type Mode = 'off' | 'on';
type Server = 'auto' | 'uws' | 'ws';

/** One load of a run: sockets × transactions per second, each transaction `batch` rows (inserts only when > 1). */
interface Load {
  name: string;
  n: number;
  r: number;
  batch: number;
  mix: [number, number, number];
}

interface LoadRun {
  load: Load;
  result: LoadResult;
  /** Connections that negotiated permessage-deflate, of all the run's connections. */
  negotiated: number;
  connections: number;
}

interface Run {
  server: Server;
  mode: Mode;
  round: number;
  /** % of all CPUs busy just before the run. */
  background: number;
  loads: LoadRun[];
  error?: string;
}

// 4,000 deliveries/s at two fan-outs: the load workers' ws clients inflate each message for about 100 µs of CPU
// (measured: 109 µs against 9 µs off, at 4000x400), so more would saturate the load core and time the clients, not the relay.
export const compressionDefaults = { steps: '1000x200,2000x100', batch: 50, batchSteps: '1000x10', t: 50, d: 6, warmup: 1, repeat: 3 };

function parseLoads(raw: string, batch: number, mix: [number, number, number]): Load[] {
  if (raw.trim() === '' || raw === '0') return [];
  return raw.split(',').map((s) => {
    const m = /^\s*(\d+)x(\d+)\s*$/.exec(s);
    if (!m) throw new Error(`--steps and --batch-steps take connections x tx/s pairs such as 1000x200; got ${JSON.stringify(s)}.`);
    const n = Number(m[1]);
    const r = Number(m[2]);
    return batch > 1 ? { name: `${int(n)} sockets × ${r} tx/s of ${batch} rows`, n, r, batch, mix: [100, 0, 0] } : { name: `${int(n)} sockets × ${r} tx/s of 1 row`, n, r, batch: 1, mix };
  });
}

/** One relay with RELAY_COMPRESSION=`mode`, every load in turn (sockets only ever added), clients that offer permessage-deflate as browsers do. */
async function runOnce(ctx: RunContext, server: Server, mode: Mode, loads: Load[], o: { t: number; d: number; warmup: number }, round: number): Promise<LoadRun[]> {
  const tokens = await tokensFor(ctx.secret, o.t);
  const maxN = Math.max(...loads.map((l) => l.n));
  const env = { RELAY_COMPRESSION: mode, ...(server === 'auto' ? {} : { RELAY_SERVER: server }) };
  return withTarget(ctx, 'pgrelay', { nofile: maxN + 4096, env }, async ({ server: relay, databaseUrl }) => {
    const fleet = new Fleet(maxN > 2000 ? 2 : 1, { nofile: maxN + 4096 });
    const out: LoadRun[] = [];
    let negotiated = 0;
    try {
      for (const [i, load] of loads.entries()) {
        const c = await fleet.connect('pgrelay', relay.baseUrl, tokens, load.n, o.t, { compression: true });
        if (c.failed > 0) throw new Error(`${c.failed} of ${load.n} connections failed (${c.errors.join('; ')})`);
        negotiated += c.compressed;
        await sleep(500);
        process.stderr.write(`fanout --compression: ${server === 'auto' ? '' : `RELAY_SERVER=${server}, `}RELAY_COMPRESSION=${mode}, round ${round}: ${load.name} = ${int((load.n / o.t) * load.r * load.batch)} deliveries/s offered...\n`);
        const result = await measure(relay, fleet, databaseUrl, { n: load.n, t: o.t, r: load.r, d: o.d, warmup: o.warmup, mix: load.mix, batch: load.batch }, (i + 1) * 100_000_000);
        out.push({ load, result, negotiated, connections: fleet.connections });
      }
    } finally {
      await fleet.close();
    }
    return out;
  });
}

export async function fanoutCompressionBenchmark(ctx: RunContext, flags: Flags, command: string): Promise<void> {
  const quick = flags.bool('quick');
  const d = compressionDefaults;
  const o = { t: flags.num('t', quick ? 10 : d.t), d: flags.num('d', quick ? 2 : d.d), warmup: flags.num('warmup', d.warmup), repeat: flags.num('repeat', quick ? 1 : d.repeat) };
  if (!Number.isInteger(o.repeat) || o.repeat < 1) throw new Error('--repeat must be a whole number of rounds, at least 1.');
  const batch = flags.num('batch', d.batch);
  const loads = [
    ...parseLoads(flags.str('steps', quick ? '200x50' : d.steps), 1, parseMix(flags)),
    ...(batch > 1 ? parseLoads(flags.str('batch-steps', quick ? '200x5' : d.batchSteps), batch, [100, 0, 0]) : []),
  ].sort((a, b) => a.n - b.n);
  if (loads.length === 0) throw new Error('--compression needs at least one load: --steps or --batch-steps.');
  const servers = flags.list('servers', ['auto']);
  for (const s of servers) if (s !== 'auto' && s !== 'uws' && s !== 'ws') throw new Error(`--servers takes uws and ws; got ${JSON.stringify(s)}.`);

  const runs: Run[] = [];
  for (let round = 1; round <= o.repeat; round++) {
    // interleaved, the order alternating per round: drift on a shared machine falls on both modes alike
    const modes: Mode[] = round % 2 ? ['off', 'on'] : ['on', 'off'];
    for (const server of servers as Server[]) {
      for (const mode of modes) {
        const background = await backgroundLoad();
        try {
          runs.push({ server, mode, round, background, loads: await runOnce(ctx, server, mode, loads, o, round) });
        } catch (err) {
          const error = err instanceof Error ? err.message.split('\n')[0]! : String(err);
          process.stderr.write(`fanout --compression: RELAY_COMPRESSION=${mode}, round ${round} failed: ${err instanceof Error ? err.message : String(err)}\n`);
          runs.push({ server, mode, round, background, loads: [], error });
        }
      }
    }
  }
  await saveRaw('fanout-compression', { options: o, loads, servers, runs });

  const configs = servers.flatMap((server) => (['off', 'on'] as Mode[]).map((mode) => ({ server: server as Server, mode })));
  const label = (c: { server: Server; mode: Mode }) => `${c.mode}${c.server === 'auto' ? '' : `, ${c.server}`}`;
  const tables = loads.flatMap((load, li) => {
    const of = (c: { server: Server; mode: Mode }) => runs.filter((r) => r.server === c.server && r.mode === c.mode).map((r) => r.loads[li]).filter((x): x is LoadRun => x !== undefined);
    const figure = (xs: LoadRun[], pick: (x: LoadRun) => number) => median(xs.map(pick));
    const cell = (xs: LoadRun[], pick: (x: LoadRun) => number, fmt: (v: number) => string) => {
      const vs = xs.map(pick).filter(Number.isFinite);
      if (vs.length === 0) return 'n/a';
      return vs.length === 1 ? fmt(vs[0]!) : `${fmt(median(vs))} (${fmt(Math.min(...vs))}–${fmt(Math.max(...vs))})`;
    };
    const wire = (x: LoadRun) => x.result.wireBytes / x.result.wireDeliveries;
    const serverUs = (x: LoadRun) => (x.result.serverCpu / 100 / x.result.deliveredPerSec) * 1e6;
    const clientUs = (x: LoadRun) => (x.result.loadCpu / 100 / x.result.deliveredPerSec) * 1e6;
    const rows = configs.map((c) => {
      const xs = of(c);
      const off = of({ server: c.server, mode: 'off' });
      return [
        label(c),
        `${xs.length} of ${o.repeat}`,
        xs.length ? `${int(median(xs.map((x) => x.negotiated)))} of ${int(median(xs.map((x) => x.connections)))}` : 'n/a',
        cell(xs, (x) => x.result.deliveredPerSec, int),
        cell(xs, wire, (v) => v.toFixed(0)),
        c.mode === 'on' ? ratio(figure(xs, wire), figure(off, wire)) : '',
        cell(xs, serverUs, (v) => v.toFixed(2)),
        c.mode === 'on' ? ratio(figure(xs, serverUs), figure(off, serverUs)) : '',
        cell(xs, clientUs, (v) => v.toFixed(2)),
        cell(xs, (x) => x.result.loadCoreBusy, (v) => `${v.toFixed(0)} %`),
        cell(xs, (x) => x.result.latency.p50, ms),
        cell(xs, (x) => x.result.latency.p99, ms),
        int(xs.reduce((s, x) => s + x.result.lost + x.result.duplicates + x.result.wrongTenant, 0)),
      ];
    });
    return [
      '',
      `${load.name}, ${o.t} tenants: ${int((load.n / o.t) * load.r * load.batch)} deliveries/s offered${load.batch > 1 ? ` (${int((load.n / o.t) * load.r)} frames/s of ${load.batch} rows)` : ''}.`,
      '',
      table(['RELAY_COMPRESSION', 'runs', 'negotiated (sockets)', 'deliveries/s', 'bytes on the wire per delivery', 'on / off', 'server CPU µs per delivery', 'on / off', 'client CPU µs per delivery', 'load core busy', 'p50 ms', 'p99 ms', 'lost + duplicated + other tenant'], rows),
    ];
  });
  const failed = runs.filter((r) => r.error !== undefined).map((r) => `- ${label(r)}, round ${r.round}: did not run: ${r.error}.`);
  const busiest = Math.max(ctx.background, ...runs.map((r) => r.background));
  const md = [
    sectionHeader('compression', command, { ...ctx, background: busiest }, `- Target: pgrelay (\`relay/cli.ts start\`) with \`RELAY_COMPRESSION=off\` and \`on\`${servers.includes('auto') ? ' (the server RELAY_SERVER=auto picks)' : ''}${servers.filter((s) => s !== 'auto').map((s) => `, \`RELAY_SERVER=${s}\``).join('')}; a fresh database and relay per run; no baselines.`),
    `- Clients: the load workers' \`ws\` clients all offer permessage-deflate, as browsers do (ws's default offer); "negotiated" counts the sockets whose upgrade accepted it. Loads run in the order given by their socket count on one relay, ${o.d} s each after ${o.warmup} s of warm-up; rows are the bench's \`orders\` (a \`tx\` frame of a few hundred bytes for one row: the off rows' bytes per delivery; single-row transactions mix inserts, updates and deletes ${parseMix(flags).join('/')} %), batches are one insert statement of that many rows.`,
    `- Bytes on the wire per delivery: bytes the workers read from their TCP sockets (WebSocket frames with their headers, as they arrived: not computed from frame sizes; TCP/IP headers not included) over the whole measurement, ÷ every row change delivered to a socket in it (warm-up and probe rows included). Server CPU per delivery: the relay process's CPU-seconds (/proc/<pid>/stat, user + kernel) ÷ counted deliveries; client CPU likewise for the load workers (inflating is theirs: ws in Node spends about 100 µs per compressed message, so the loads stay where the load core keeps up; at about 90 % busy it is the limit and the latencies time the clients, not the relay). p50 / p99: commit → receipt of every counted delivery.`,
    `- Runs: off and on interleaved, ${o.repeat} round(s), the order alternating per round. Each figure is the median over the rounds, with min–max; "on / off" is the ratio of the medians.`,
    ...tables,
    ...(failed.length ? ['', ...failed] : []),
  ].join('\n');
  await publish('compression', md);
}
