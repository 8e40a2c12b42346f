// Benchmark 1: commit → receipt latency and exact delivery accounting at a fixed load, pgrelay against A and B in the same run.
import { sleep } from '../../db/testing/wait.js';
import type { Flags } from '../lib/args.js';
import { onSession, type Benchmark } from '../lib/benchmark.js';
import { targetColors, writeChart } from '../lib/charts.js';
import { Fleet } from '../lib/fleet.js';
import { int, ms, ratio, table } from '../lib/format.js';
import { measureFloor, type FloorResult } from '../lib/floor.js';
import { cpuCells, latencyCells, measure, type LoadResult, type LoadSpec } from '../lib/measure.js';
import { goalsTable, publish, sectionHeader, type Goal } from '../lib/report.js';
import { saveRaw } from '../lib/results.js';
import { interleave, parseServers, publishServerRuns, serversUsage, serverTable, type ServerRounds } from '../lib/servers.js';
import { tokensFor, withTarget, type RunContext } from '../lib/session.js';
import { parseTargets, targetLabel, targetsUsage, type TargetName } from '../lib/targets.js';

export const latencyDefaults = { n: 1000, t: 50, r: 200, d: 30, warmup: 3 };
export const latencyQuick = { n: 100, t: 10, r: 100, d: 5, warmup: 1 };

export function parseMix(flags: Flags): [number, number, number] {
  const [i = 70, u = 20, d = 10] = flags.list('mix', ['70', '20', '10']).map(Number);
  if (Math.abs(i + u + d - 100) > 1e-9) throw new Error('--mix must be three percentages (inserts,updates,deletes) adding up to 100.');
  return [i, u, d];
}

/** Connects `spec.n` sockets to a running target (with `env`, e.g. RELAY_SERVER), then measures. */
export async function runLoad(ctx: RunContext, target: TargetName, spec: LoadSpec, env: NodeJS.ProcessEnv = {}): Promise<LoadResult & { connectFailed: number; connectErrors: string[] }> {
  const tokens = await tokensFor(ctx.secret, spec.t);
  return withTarget(ctx, target, { env }, async ({ server, databaseUrl }) => {
    const fleet = new Fleet(spec.n > 2000 ? 2 : 1);
    try {
      const c = await fleet.connect(target, server.baseUrl, tokens, spec.n, spec.t);
      if (c.opened === 0) throw new Error(`no connection opened (${c.errors.join('; ')})`);
      await sleep(1000);
      const r = await measure(server, fleet, databaseUrl, spec, 1);
      return { ...r, connectFailed: c.failed, connectErrors: c.errors };
    } finally {
      await fleet.close();
    }
  });
}

async function latencyBenchmark(ctx: RunContext, flags: Flags, command: string): Promise<void> {
  const base = flags.bool('quick') ? latencyQuick : latencyDefaults;
  const spec: LoadSpec = {
    n: flags.num('n', base.n),
    t: flags.num('t', base.t),
    r: flags.num('r', base.r),
    d: flags.num('d', base.d),
    warmup: flags.num('warmup', base.warmup),
    mix: parseMix(flags),
  };
  const servers = parseServers(flags);
  if (servers) return latencyByServer(ctx, spec, servers, command);
  const targets = parseTargets(flags.list('targets', ['pgrelay', 'socketio', 'ws']));
  const results = new Map<TargetName, LoadResult & { connectFailed: number; connectErrors: string[] }>();
  const missing = new Map<TargetName, string>();
  for (const target of targets) {
    process.stderr.write(`latency: ${target}: ${spec.n} connections, ${spec.t} tenants, ${spec.r} tx/s for ${spec.d} s...\n`);
    try {
      results.set(target, await runLoad(ctx, target, spec));
    } catch (err) {
      missing.set(target, err instanceof Error ? err.message.split('\n')[0]! : String(err));
      process.stderr.write(`latency: ${target} did not run: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
  // Not a target: the same writes read by one LISTEN connection, so the table shows what the machine and Postgres cost by themselves.
  let floor: FloorResult | undefined;
  let relayFloor: FloorResult | undefined;
  if (flags.str('floor', 'true') !== 'false') {
    const measure = (capture: 'baseline' | 'pgrelay') =>
      measureFloor(ctx, { ...spec, d: Math.min(spec.d, 10) }, capture).catch((err: unknown) => {
        process.stderr.write(`latency: ${capture} floor not measured: ${err instanceof Error ? err.message : String(err)}\n`);
        return undefined;
      });
    process.stderr.write('latency: floors (LISTEN directly, no server)...\n');
    floor = await measure('baseline');
    if (targets.includes('pgrelay')) relayFloor = await measure('pgrelay');
  }
  await saveRaw('latency', { spec, results: Object.fromEntries(results), missing: Object.fromEntries(missing), floor, relayFloor });

  const rows = [...results.values()].map((r) => [
    targetLabel[r.target as TargetName],
    int(r.connections),
    r.achievedRate.toFixed(0),
    int(r.expected),
    int(r.delivered),
    int(r.lost),
    int(r.duplicates),
    int(r.wrongTenant),
    ...latencyCells(r.latency),
    ...cpuCells(r),
    Number.isFinite(r.postgresCpuUsPerTx) ? r.postgresCpuUsPerTx.toFixed(0) : 'n/a',
  ]);
  const pc = results.get('pgrelay')?.fromCommit;
  if (pc) {
    // pgrelay's frames carry the commit time (the sequencer's clock inside COMMIT): what remains after the capture work
    rows.push(['pgrelay, from commit (`at`)', '', '', int(pc.count), '', '', '', '', ...latencyCells(pc), '', '', '']);
  }
  for (const [label, fl] of [['floor: LISTEN, no server', floor], ["floor: LISTEN on pgrelay's channel (its ticker, no relay)", relayFloor]] as const) {
    if (!fl) continue;
    rows.push([label, '1 (pg)', '', int(fl.timed), int(fl.received), '', '', '', ...latencyCells(fl.latency), '', '', '']);
  }
  const p = results.get('pgrelay');
  const a = results.get('socketio');
  const b = results.get('ws');
  const q = results.get('pgrelay-poll');
  const ratios = [
    ...(['p50', 'p90', 'p99', 'max'] as const).map((k) => [k, ratio(p?.latency[k], a?.latency[k]), ratio(p?.latency[k], b?.latency[k]), ...(q ? [ratio(p?.latency[k], q.latency[k])] : [])]),
    ['Postgres CPU per transaction', ratio(p?.postgresCpuUsPerTx, a?.postgresCpuUsPerTx), ratio(p?.postgresCpuUsPerTx, b?.postgresCpuUsPerTx), ...(q ? [ratio(p?.postgresCpuUsPerTx, q.postgresCpuUsPerTx)] : [])],
  ];
  // DESIGN's aims for a ticker (a second commit on the path): the seed design + 1.5 ms at p50, + 3 ms at p99 and 2.5×
  // its Postgres CPU under load; at a trickle (under 10 tx/s) + 1.5 ms at p50 and 3× the CPU.
  const trickle = spec.r < 10;
  const plus = (x: number | undefined, y: number | undefined) => (x !== undefined && y !== undefined ? `${ms(x)} − ${ms(y)} = ${(x - y).toFixed(2)} ms` : 'n/a');
  const cpuTimes = trickle ? 3 : 2.5;
  const goals: Goal[] = [
    { name: 'pgrelay p50 ≤ A p50 + 1.5 ms', value: plus(p?.latency.p50, a?.latency.p50), ok: p && a ? p.latency.p50 <= a.latency.p50 + 1.5 : undefined },
    ...(trickle ? [] : [{ name: 'pgrelay p99 ≤ A p99 + 3 ms', value: plus(p?.latency.p99, a?.latency.p99), ok: p && a ? p.latency.p99 <= a.latency.p99 + 3 : undefined }]),
    { name: `pgrelay Postgres CPU per transaction ≤ ${cpuTimes}× A`, value: ratio(p?.postgresCpuUsPerTx, a?.postgresCpuUsPerTx), ok: p && a ? p.postgresCpuUsPerTx <= cpuTimes * a.postgresCpuUsPerTx : undefined },
    {
      name: 'pgrelay: zero lost deliveries',
      value: p ? `${int(p.lost)} lost, ${int(p.duplicates)} duplicates, ${int(p.connectFailed)} failed connections` : 'n/a',
      ok: p ? p.lost === 0 && p.duplicates === 0 && p.connectFailed === 0 && p.wrongTenant === 0 : undefined,
    },
  ];

  const chartRows = [...results.values()].flatMap((r) =>
    (['p50', 'p90', 'p99', 'p999', 'max'] as const).map((k) => ({ target: targetLabel[r.target as TargetName], percentile: k === 'p999' ? 'p99.9' : k, ms: Math.max(r.latency[k], 0.01) })),
  );
  const chart = chartRows.length
    ? await writeChart('latency', {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        title: `Commit → receipt latency, ${spec.n} sockets, ${spec.t} tenants, ${spec.r} tx/s`,
        data: { values: chartRows },
        mark: 'bar',
        encoding: {
          x: { field: 'percentile', type: 'ordinal', sort: ['p50', 'p90', 'p99', 'p99.9', 'max'], title: null },
          xOffset: { field: 'target', sort: ['pgrelay', 'A (Socket.IO)', 'B (ws)'] },
          y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'ms (log)' },
          color: targetColors,
        },
        width: 420,
        height: 260,
      })
    : undefined;

  const byProcess = [...results.values()].filter((r) => r.postgresCpuByProcess).map((r) =>
    `- Postgres CPU by process, µs per transaction, ${targetLabel[r.target as TargetName]}: ${Object.entries(r.postgresCpuByProcess!).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}.`);
  const notes = [
    ...byProcess,
    ...[...missing].map(([t, why]) => `- ${targetLabel[t]} did not run: ${why}.`),
    ...[...results.values()].filter((r) => r.connectFailed > 0).map((r) => `- ${targetLabel[r.target as TargetName]}: ${r.connectFailed} connections failed (${r.connectErrors.join('; ')}).`),
    ...[...results.values()].filter((r) => r.writerErrors.length > 0).map((r) => `- ${targetLabel[r.target as TargetName]}: writer errors: ${r.writerErrors.join('; ')}.`),
    ...[...results.values()].filter((r) => r.closed > 0).map((r) => `- ${targetLabel[r.target as TargetName]}: ${r.closed} sockets closed during the run.`),
  ];
  const md = [
    // one section per rate, so that the 200 tx/s and the 1 tx/s runs both stay
    sectionHeader('latency', command, ctx).replace(/^(## [^\n]*)/, `$1, ${spec.r} transaction${spec.r === 1 ? '' : 's'} per second`),
    `- Load: ${spec.n} authenticated sockets over ${spec.t} tenants (each socket sees only its tenant); a writer commits ${spec.r} single-row transactions/s for ${spec.d} s after ${spec.warmup} s of warm-up, ${spec.mix[0]} % inserts / ${spec.mix[1]} % updates / ${spec.mix[2]} % deletes, through plain SQL.`,
    '- Latency = receipt time − the row\'s `ts` (`clock_timestamp()` when the row was written), same host clock, for every delivered insert and update (deletes carry the old row: counted, not timed); HDR-style histogram, ≤ 0.1 % error. Every delivery is accounted: each committed change must reach each socket of its tenant exactly once.',
    '- That is write → screen, the same clock for all three, and it includes what each design costs the writing transaction (pgrelay\'s durable log is written inside it) and pgrelay\'s ticker (a second commit after the writer\'s). pgrelay\'s frames also carry `at`: the commit time with track_commit_timestamp, else the time of the tick that saw the commit: the row "pgrelay, from commit" is receipt − `at`; the baselines\' payloads carry no commit time.',
    '- Postgres CPU per transaction: every process of the server (writers, LISTEN backends, pgrelay\'s ticker and reads, WAL writer, autovacuum), from before the first write until the drain, ÷ committed transactions.',
    '- The floor rows are not targets: the same writes (at most 10 s of them) read by one plain LISTEN connection on the load CPU, with no server in between: what Postgres and this machine cost by themselves (their "expected" and "delivered" count timed notifications). "floor: LISTEN, no server" uses the baselines\' trigger; "floor: LISTEN on pgrelay\'s channel" uses pgrelay\'s capture and reads its `relay` NOTIFY (changes inline), so the pgrelay row minus this row is what the relay process and its frames add.',
    '',
    table(['target', 'sockets', 'tx/s', 'expected', 'delivered', 'lost', 'dup', 'wrong tenant', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'server CPU', 'load workers / load core', 'Postgres CPU µs/tx'], rows),
    '',
    table(['latency', 'pgrelay / A', 'pgrelay / B', ...(q ? ['pgrelay / pgrelay with its ticker polling'] : [])], ratios),
    '',
    goalsTable(goals),
    ...(chart ? ['', `![latency](${chart})`] : []),
    ...(notes.length ? ['', ...notes] : []),
  ].join('\n');
  await publish('latency', md);
}

/** `--servers uws,ws`: the same load against pgrelay on each server implementation, interleaved, `--repeat` rounds. */
async function latencyByServer(ctx: RunContext, spec: LoadSpec, rounds: ServerRounds, command: string): Promise<void> {
  const runs = await interleave(rounds, 'latency', (server) => runLoad(ctx, 'pgrelay', spec, { RELAY_SERVER: server }));
  await saveRaw('latency-servers', { spec, rounds, runs });
  type R = LoadResult & { connectFailed: number };
  await publishServerRuns('latencyServers', ctx, command, runs, [
    `- Load, as in section 1: ${spec.n} authenticated sockets over ${spec.t} tenants; a writer commits ${spec.r} single-row transactions/s for ${spec.d} s after ${spec.warmup} s of warm-up (${spec.mix.join(' / ')} % inserts / updates / deletes). Latency = receipt − the row's \`ts\` (write → screen), every delivery accounted. ${rounds.repeat} rounds, the servers interleaved in each (${rounds.servers.join(', ')}); each figure is the median over the rounds, with min–max.`,
    '',
    serverTable<R>(runs, rounds, [
      { name: 'p50 ms', value: (r) => r.latency.p50, format: ms },
      { name: 'p90 ms', value: (r) => r.latency.p90, format: ms },
      { name: 'p99 ms', value: (r) => r.latency.p99, format: ms },
      { name: 'max ms', value: (r) => r.latency.max, format: ms },
      { name: 'server CPU', value: (r) => r.serverCpu, format: (v) => `${v.toFixed(0)} %` },
      { name: 'lost + duplicated + wrong tenant (all rounds)', value: (r) => r.lost + r.duplicates + r.wrongTenant, format: int, sum: true },
      { name: 'failed connections (all rounds)', value: (r) => r.connectFailed, format: int, sum: true },
    ]),
  ]);
}

export const latency: Benchmark = {
  name: 'latency',
  title: 'Commit → receipt latency at a fixed load, every delivery accounted; pgrelay against A and B (sections 1 and 6)',
  usage: `--n 1000 --t 50 --r 200 --d 30 --warmup 3 --mix 70,20,10 (sockets, tenants, tx/s, seconds, warm-up s, % inserts,updates,deletes)
--floor false (skip the LISTEN floors)   ${targetsUsage}
${serversUsage}`,
  run: onSession(latencyBenchmark),
};
