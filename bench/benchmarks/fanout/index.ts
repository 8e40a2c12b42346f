// Benchmark 2: the fan-out ceiling: deliveries per second raised step by step (tx/s, then sockets) until p99 > 100 ms or deliveries fall behind.
import { sleep } from '../../../db/testing/wait.js';
import type { Flags } from '../../lib/args.js';
import { onSession, type Benchmark } from '../../lib/benchmark.js';
import { targetColors, writeChart } from '../../lib/charts.js';
import { Fleet } from '../../lib/fleet.js';
import { int, ms, ratio, table } from '../../lib/format.js';
import { cpuCells, latencyCells, measure, type LoadResult } from '../../lib/measure.js';
import { goalsTable, publish, sectionHeader, type Goal } from '../../lib/report.js';
import { saveRaw } from '../../lib/results.js';
import { interleave, parseServers, publishServerRuns, serversUsage, serverTable, type ServerRounds, type ServerRun } from '../../lib/servers.js';
import { tokensFor, withTarget, type RunContext } from '../../lib/session.js';
import { parseTargets, targetLabel, targetsUsage, type TargetName } from '../../lib/targets.js';
import { fanoutCompressionBenchmark } from './compression.js';
import { fanoutRulesBenchmark } from './rules.js';
import { parseMix } from '../latency.js';

// Deliveries double at each step, mostly through sockets per tenant: on two cores, commits cost the load CPU (writer and Postgres) and fan-out costs the server.
export const fanoutDefaults = { steps: '1000x200,2000x200,4000x200,8000x200,8000x400,16000x400,16000x800', t: 50, d: 6, warmup: 1 };
export const fanoutQuick = { steps: '100x50,100x100,200x200', t: 10, d: 3, warmup: 1 };
/** The `--servers` mode measures cost per delivery at fixed loads both servers carry, not a ceiling. */
const fanoutServerSteps = '2000x200,4000x400';

export interface Step {
  n: number;
  r: number;
}

export interface StepResult extends LoadResult {
  ok: boolean;
  /** Why the step failed, or what limited it. */
  reason: string;
}

export interface TargetCurve {
  target: TargetName;
  steps: StepResult[];
  /** Highest delivered/s over passing steps. */
  ceiling: number;
  /** True when no step failed because of the server: the real ceiling is higher than measured. */
  atLeast: boolean;
  limit: string;
}

export function parseSteps(raw: string): Step[] {
  const steps = raw.split(',').map((s) => {
    const m = /^\s*(\d+)x(\d+)\s*$/.exec(s);
    if (!m) throw new Error(`--steps takes connections x tx/s pairs such as 1000x200,2000x400; got ${JSON.stringify(s)}.`);
    return { n: Number(m[1]), r: Number(m[2]) };
  });
  for (let i = 1; i < steps.length; i++) if (steps[i]!.n < steps[i - 1]!.n) throw new Error('--steps: connections may not decrease from one step to the next.');
  return steps;
}

/** Pass: p99 within the bound, nothing lost or duplicated, no backlog left a second after the last commit. */
function judge(r: LoadResult, p99Bound: number): { ok: boolean; reason: string } {
  const behind = r.drainMs > 1000;
  const problems = [
    r.latency.p99 > p99Bound ? `p99 ${ms(r.latency.p99)} ms > ${p99Bound} ms` : '',
    r.lost > 0 ? `${int(r.lost)} lost` : '',
    r.duplicates > 0 ? `${int(r.duplicates)} duplicates` : '',
    behind ? `backlog: last delivery ${ms(r.drainMs)} ms after the last commit` : '',
    r.wrongTenant > 0 ? `${int(r.wrongTenant)} rows of another tenant` : '',
  ].filter(Boolean);
  return { ok: problems.length === 0, reason: problems.join(', ') || 'ok' };
}

type CurveOptions = { t: number; d: number; warmup: number; p99: number; mix: [number, number, number] };

async function curve(ctx: RunContext, target: TargetName, steps: Step[], o: CurveOptions, env: NodeJS.ProcessEnv = {}): Promise<TargetCurve> {
  const tokens = await tokensFor(ctx.secret, o.t);
  const maxN = Math.max(...steps.map((s) => s.n));
  return withTarget(ctx, target, { nofile: maxN + 4096, env }, async ({ server, databaseUrl }) => {
    const fleet = new Fleet(maxN > 2000 ? 2 : 1, { nofile: maxN + 4096 });
    const out: TargetCurve = { target, steps: [], ceiling: 0, atLeast: true, limit: 'every step passed: the ceiling is above the last step' };
    try {
      for (const [i, step] of steps.entries()) {
        const c = await fleet.connect(target, server.baseUrl, tokens, step.n, o.t);
        if (c.failed > 0) {
          out.atLeast = false;
          out.limit = `${c.failed} of ${step.n} connections failed (${c.errors.join('; ')})`;
          break;
        }
        await sleep(500);
        process.stderr.write(`fanout: ${target}: ${step.n} sockets × ${step.r} tx/s / ${o.t} tenants = ${int((step.n / o.t) * step.r)} deliveries/s offered...\n`);
        const r = await measure(server, fleet, databaseUrl, { n: step.n, t: o.t, r: step.r, d: o.d, warmup: o.warmup, mix: o.mix }, (i + 1) * 100_000_000);
        const j = judge(r, o.p99);
        out.steps.push({ ...r, ...j });
        if (j.ok) out.ceiling = Math.max(out.ceiling, r.deliveredPerSec);
        // The writer could not commit at the asked rate: the server was not the limit at this step.
        if (r.achievedRate < 0.95 * step.r) {
          out.limit = `the writer reached ${r.achievedRate.toFixed(0)} of ${step.r} tx/s (Postgres on the load CPU is the limit, not the server)`;
          break;
        }
        if (!j.ok) {
          // A saturated load core (workers, writer, Postgres, or other work on the machine) means the server was not the limit.
          out.atLeast = r.loadCoreBusy >= 90;
          out.limit = out.atLeast ? `load core ${r.loadCoreBusy.toFixed(0)} % busy at the failing step (${j.reason}): the load side, not the server, was saturated` : j.reason;
          break;
        }
      }
    } finally {
      await fleet.close();
    }
    return out;
  });
}

async function fanoutBenchmark(ctx: RunContext, flags: Flags, command: string): Promise<void> {
  if (flags.bool('rules')) return fanoutRulesBenchmark(ctx, flags, command);
  if (flags.bool('compression')) return fanoutCompressionBenchmark(ctx, flags, command);
  const base = flags.bool('quick') ? fanoutQuick : fanoutDefaults;
  const servers = parseServers(flags);
  const steps = parseSteps(flags.str('steps', servers && !flags.bool('quick') ? fanoutServerSteps : base.steps));
  const o = { t: flags.num('t', base.t), d: flags.num('d', base.d), warmup: flags.num('warmup', base.warmup), p99: flags.num('p99', 100), mix: parseMix(flags) };
  if (servers) return fanoutByServer(ctx, steps, o, servers, command);
  const targets = parseTargets(flags.list('targets', ['pgrelay', 'socketio', 'ws']));
  const curves = new Map<TargetName, TargetCurve>();
  const missing = new Map<TargetName, string>();
  for (const target of targets) {
    try {
      curves.set(target, await curve(ctx, target, steps, o));
    } catch (err) {
      missing.set(target, err instanceof Error ? err.message.split('\n')[0]! : String(err));
      process.stderr.write(`fanout: ${target} did not run: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
  await saveRaw('fanout', { steps, options: o, curves: Object.fromEntries(curves), missing: Object.fromEntries(missing) });

  const stepRows = [...curves.values()].flatMap((c) =>
    c.steps.map((s) => [
      targetLabel[c.target],
      int(s.n),
      int(s.r),
      int(s.offeredPerSec),
      int(s.deliveredPerSec),
      ...latencyCells(s.latency, ['p50', 'p99', 'max']),
      int(s.lost),
      ms(s.drainMs),
      ...cpuCells(s),
      s.ok ? 'pass' : `fail: ${s.reason}`,
    ]),
  );
  const fmtCeiling = (c: TargetCurve) => `${c.atLeast ? '≥ ' : ''}${int(c.ceiling)}`;
  const p = curves.get('pgrelay');
  const a = curves.get('socketio');
  const b = curves.get('ws');
  // A ceiling marked ≥ is a lower bound: a ratio with one is a bound too, and a goal is decided only when the bound decides it.
  const bounded = (x?: TargetCurve, y?: TargetCurve) =>
    x && y ? `${x.atLeast && !y.atLeast ? '≥ ' : !x.atLeast && y.atLeast ? '≤ ' : x.atLeast && y.atLeast ? '? ' : ''}${ratio(x.ceiling, y.ceiling)}` : 'n/a';
  const pass = (x: TargetCurve | undefined, y: TargetCurve | undefined, k: number): boolean | undefined => {
    if (!x || !y || y.ceiling <= 0) return undefined;
    const meets = x.ceiling >= k * y.ceiling;
    if (meets) return y.atLeast ? undefined : true;
    return x.atLeast ? undefined : false;
  };
  const goals: Goal[] = [
    { name: 'fan-out ceiling ≥ 5× A', value: bounded(p, a), ok: pass(p, a, 5) },
    { name: 'fan-out ceiling ≥ 1.5× B', value: bounded(p, b), ok: pass(p, b, 1.5) },
  ];

  const points = [...curves.values()].flatMap((c) => c.steps.map((s) => ({ target: targetLabel[c.target], offered: s.offeredPerSec, delivered: s.deliveredPerSec, p50: Math.max(s.latency.p50, 0.01), p99: Math.max(s.latency.p99, 0.01), result: s.ok ? 'pass' : 'fail' })));
  const charts: string[] = [];
  if (points.length) {
    charts.push(
      await writeChart('fanout', {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        title: 'Fan-out: deliveries/s received vs offered',
        data: { values: points },
        mark: { type: 'line', point: { filled: true, size: 60 } },
        encoding: {
          x: { field: 'offered', type: 'quantitative', scale: { type: 'log' }, title: 'offered deliveries/s (log)' },
          y: { field: 'delivered', type: 'quantitative', scale: { type: 'log' }, title: 'received deliveries/s (log)' },
          color: targetColors,
          shape: { field: 'result', type: 'nominal', scale: { domain: ['pass', 'fail'], range: ['circle', 'cross'] } },
        },
        width: 420,
        height: 280,
      }),
      await writeChart('latency-vs-load', {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        title: 'Latency percentiles vs load (fan-out steps)',
        data: { values: points },
        transform: [{ fold: ['p50', 'p99'], as: ['percentile', 'ms'] }],
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'offered', type: 'quantitative', scale: { type: 'log' }, title: 'offered deliveries/s (log)' },
          y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'latency ms (log)' },
          color: targetColors,
          strokeDash: { field: 'percentile', type: 'nominal', title: null },
        },
        width: 420,
        height: 280,
      }),
    );
  }
  const ceilingRows = [...curves.values()].map((c) => [targetLabel[c.target], fmtCeiling(c), c.limit]);
  // When the load core saturates first, the ceilings above are lower bounds. What each server spends per delivery
  // still shows how far it could go on a core of its own: deliveries per server-CPU-second, best passing step.
  // The best passing step (most deliveries per server-CPU-second), and how its server CPU splits between user space and the kernel.
  const best = new Map([...curves.values()].map((c) => {
    const ok = c.steps.filter((x) => x.ok && x.serverCpu > 5);
    const perCpu = (x: StepResult) => x.deliveredPerSec / (x.serverCpu / 100);
    return [c.target, ok.length ? ok.reduce((m, x) => (perCpu(x) > perCpu(m) ? x : m)) : undefined];
  }));
  const perDeliveryUs = (t: TargetName, part: 'all' | 'user' | 'system') => {
    const x = best.get(t);
    if (!x) return 0;
    const cpu = part === 'all' ? x.serverCpu : part === 'system' ? x.serverSystemCpu : x.serverCpu - x.serverSystemCpu;
    return (cpu / 100 / x.deliveredPerSec) * 1e6;
  };
  const eff = (t: TargetName) => (best.get(t) ? 1e6 / perDeliveryUs(t, 'all') : 0);
  const effRows = [...curves.values()].map((c) => [
    targetLabel[c.target],
    int(eff(c.target)),
    `${perDeliveryUs(c.target, 'all').toFixed(1)} µs`,
    `${perDeliveryUs(c.target, 'user').toFixed(1)} µs`,
    `${perDeliveryUs(c.target, 'system').toFixed(1)} µs`,
  ]);
  const md = [
    sectionHeader('fanout', command, ctx),
    `- Steps (sockets × tx/s over ${o.t} tenants, ${o.d} s each after ${o.warmup} s warm-up): ${steps.map((s) => `${s.n}×${s.r}`).join(', ')}. A delivery is one change reaching one socket; offered = expected deliveries / writing time.`,
    `- A step passes when p99 ≤ ${o.p99} ms, nothing is lost or duplicated and the last delivery lands within 1 s of the last commit (no backlog). The ceiling is the highest received deliveries/s of a passing step; "≥" when the server never failed (the writer, or a load core ≥ 90 % busy, was the limit). CPU: % of one core used by the server process and by the load workers, and how busy the load core was in all.`,
    '',
    table(['target', 'sockets', 'tx/s', 'offered/s', 'received/s', 'p50 ms', 'p99 ms', 'max ms', 'lost', 'drain ms', 'server CPU', 'load workers / load core', 'result'], stepRows),
    '',
    table(['target', 'ceiling (deliveries/s)', 'limited by'], ceilingRows),
    '',
    table(['ceiling', 'pgrelay / A', 'pgrelay / B'], [['deliveries/s', bounded(p, a), bounded(p, b)]]),
    '',
    '- Server cost per delivery (server CPU-seconds per delivery at the best passing step): the ceiling each server would reach on a core of its own, all else equal. Split by /proc/<pid>/stat into user space (JavaScript, V8, the WebSocket library) and kernel (system time: on loopback the kernel also does the receiving side of each socket write).',
    '',
    table(['target', 'deliveries per server-CPU-second', 'server CPU per delivery', 'user space', 'kernel'], effRows),
    '',
    table(['per server-CPU-second', 'pgrelay / A', 'pgrelay / B'], [
      ['deliveries', ratio(eff('pgrelay'), eff('socketio')), ratio(eff('pgrelay'), eff('ws'))],
      ['user-space CPU per delivery', ratio(perDeliveryUs('pgrelay', 'user'), perDeliveryUs('socketio', 'user')), ratio(perDeliveryUs('pgrelay', 'user'), perDeliveryUs('ws', 'user'))],
    ]),
    '',
    goalsTable(goals),
    ...charts.map((c) => `\n![${c}](${c})`),
    ...(missing.size ? ['', ...[...missing].map(([t, why]) => `- ${targetLabel[t]} did not run: ${why}.`)] : []),
  ].join('\n');
  await publish('fanout', md);
}

/** `--servers uws,ws`: each step against pgrelay on each server implementation, interleaved, `--repeat` rounds; what a delivery costs the server. */
async function fanoutByServer(ctx: RunContext, steps: Step[], o: CurveOptions, rounds: ServerRounds, command: string): Promise<void> {
  const runs = await interleave(rounds, 'fanout', (server) => curve(ctx, 'pgrelay', steps, o, { RELAY_SERVER: server }));
  await saveRaw('fanout-servers', { steps, options: o, rounds, runs });
  const failures = runs.flatMap((r) => (r.result?.steps ?? []).filter((x) => !x.ok).map((x) => `- RELAY_SERVER=${r.server}, round ${r.round}, ${int(x.n)}×${x.r}: ${x.reason}.`));
  await publishServerRuns('fanoutServers', ctx, command, runs, [
    `- Steps as in section 2 (sockets × tx/s, ${o.d} s each after ${o.warmup} s of warm-up, p99 bound ${o.p99} ms), fixed loads that both servers are asked to carry. Server CPU per delivery = the server process's CPU-seconds (/proc/<pid>/stat, user space and kernel) ÷ deliveries received: its inverse, deliveries per server-CPU-second, is the fan-out each server would reach on a core of its own. ${rounds.repeat} rounds, the servers interleaved in each (${rounds.servers.join(', ')}); each figure is the median over the rounds, with min–max.`,
    ...serverStepTables(steps, o, rounds, runs),
    ...(failures.length ? ['', ...failures] : []),
  ]);
}

/** One table per step: what each server received, its p99, and its CPU per delivery (a step a run did not reach is left out). */
export function serverStepTables(steps: readonly Step[], o: { t: number }, rounds: ServerRounds, runs: ReadonlyArray<ServerRun<TargetCurve>>): string[] {
  const at = (i: number) => (c: TargetCurve) => c.steps[i];
  const cpuUs = (x: StepResult | undefined, part: 'all' | 'user' | 'system') =>
    x ? (((part === 'all' ? x.serverCpu : part === 'system' ? x.serverSystemCpu : x.serverCpu - x.serverSystemCpu) / 100) / x.deliveredPerSec) * 1e6 : NaN;
  return steps.flatMap((step, i) => [
    '',
    `Step ${i + 1}: ${int(step.n)} sockets × ${step.r} tx/s over ${o.t} tenants = ${int((step.n / o.t) * step.r)} deliveries/s offered.`,
    '',
    serverTable<TargetCurve>(runs, rounds, [
      { name: 'received/s', value: (c) => at(i)(c)?.deliveredPerSec ?? NaN, format: int },
      { name: 'p99 ms', value: (c) => at(i)(c)?.latency.p99 ?? NaN, format: ms },
      { name: 'server CPU', value: (c) => at(i)(c)?.serverCpu ?? NaN, format: (v) => `${v.toFixed(0)} %` },
      { name: 'deliveries per server-CPU-second', value: (c) => 1e6 / cpuUs(at(i)(c), 'all'), format: int },
      { name: 'server CPU per delivery', value: (c) => cpuUs(at(i)(c), 'all'), format: (v) => `${v.toFixed(1)} µs` },
      { name: 'user space', value: (c) => cpuUs(at(i)(c), 'user'), format: (v) => `${v.toFixed(1)} µs` },
      { name: 'kernel', value: (c) => cpuUs(at(i)(c), 'system'), format: (v) => `${v.toFixed(1)} µs` },
      { name: 'steps failed (all rounds)', value: (c) => (at(i)(c) && !at(i)(c)!.ok ? 1 : 0), format: int, sum: true },
    ]),
  ]);
}

export const fanout: Benchmark = {
  name: 'fanout',
  title: 'Fan-out ceiling: deliveries/s raised step by step until p99 > 100 ms, a loss or a backlog (sections 2, 2b, 7, 9)',
  usage: `--steps 1000x200,2000x200,… (sockets x tx/s, sockets never decreasing) --t 50 --d 6 --warmup 1 --p99 100 --mix 70,20,10
${targetsUsage}
${serversUsage} (steps default to ${fanoutServerSteps})
--rules: 50 tenants × 20 users with a per-user access rule vs none (--t 50 --users 20 --r 200 --d 6 --repeats 3 --snapshot-rows 20000 --snapshots 10)
--compression: RELAY_COMPRESSION off and on interleaved (--steps 1000x200,2000x100 --batch 50 --batch-steps 1000x10 --t 50 --d 6 --repeat 3 [--servers uws,ws])`,
  run: onSession(fanoutBenchmark),
};
