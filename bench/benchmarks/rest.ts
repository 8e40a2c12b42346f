// bench:rest: a system at rest (CPU, requests to Postgres) and the first change after a rest, against the seed design.
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { sleep } from '../../db/testing/wait.js';
import { postmasterPid, serverCpuSeconds } from '../lib/postgres-cpu.js';
import type { Flags } from '../lib/args.js';
import { onSession, type Benchmark } from '../lib/benchmark.js';
import { ms, table, verdict } from '../lib/format.js';
import { backgroundLoad, describeMachine, machine } from '../lib/machine.js';
import { median } from '../lib/median.js';
import { cpuSeconds } from '../lib/processes.js';
import { writeSection } from '../lib/results.js';
import { tokensFor, withTarget, type RunContext } from '../lib/session.js';
import { prepareDatabase, targetLabel, type TargetName } from '../lib/targets.js';
import { openConnection, type Delivery } from '../load/connection.js';
import { receiptTime, rowTime } from '../load/timestamps.js';


export const restDefaults = { seconds: 30, settle: 60, repeat: 3, rounds: 8, gap: 2000 };
export const restQuick = { seconds: 5, settle: 3, repeat: 1, rounds: 2, gap: 2000 };

interface RestRun {
  target: TargetName;
  /** % of one core over the window. */
  serverCpu: number;
  postgresCpu: number;
  /** Data segments Postgres received per second (each query or command is one). */
  requestsPerSec: number;
  /** pgrelay only: statements its ticker sent per second (pgrelay_ticker_statements_total). */
  tickerPerSec?: number;
}

/** Data segments received on every established connection to Postgres's port (`ss`, tcp_info's data_segs_in). */
function segmentsIn(port: number): number {
  const out = execFileSync('ss', ['-tinH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  let n = 0;
  for (const m of out.matchAll(/data_segs_in:(\d+)/g)) n += Number(m[1]);
  return n;
}

async function tickerStatements(port: number): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('pgrelay_ticker_statements_total '));
    return line ? Number(line.split(' ')[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** One connection (the load side's client for the target) that resolves once subscribed and hands every delivery to `onDelivery`. */
async function subscriber(target: TargetName, baseUrl: string, token: string, onDelivery: (d: Delivery) => void): Promise<() => void> {
  let close: () => void = () => undefined;
  await new Promise<void>((resolve, reject) => {
    close = openConnection({ target, baseUrl, token, timeoutMs: 10_000 }, {
      onReady: () => resolve(),
      onFail: (reason) => reject(new Error(`${target}: ${reason}`)),
      onClose: () => undefined,
      onDelivery,
    });
  });
  return close;
}

async function atRest(ctx: RunContext, target: TargetName, o: typeof restDefaults): Promise<RestRun> {
  const tokens = await tokensFor(ctx.secret, 1);
  return withTarget(ctx, target, {}, async ({ server, databaseUrl }) => {
    const close = await subscriber(target, server.baseUrl, tokens.t0!, () => undefined);
    try {
      const admin = new pg.Client({ connectionString: databaseUrl });
      await admin.connect();
      const postmaster = await postmasterPid(admin).finally(() => admin.end());
      const port = Number(new URL(databaseUrl).port || 5432);
      await sleep(o.settle * 1000);
      const t0 = { at: performance.now(), server: cpuSeconds(server.process.pid), pg: serverCpuSeconds(postmaster), segs: segmentsIn(port), ticker: await tickerStatements(server.port) };
      await sleep(o.seconds * 1000);
      const ticker = await tickerStatements(server.port);
      const wall = (performance.now() - t0.at) / 1000;
      return {
        target,
        serverCpu: ((cpuSeconds(server.process.pid) - t0.server) / wall) * 100,
        postgresCpu: ((serverCpuSeconds(postmaster) - t0.pg) / wall) * 100,
        // the /metrics reads above go to the relay, not to Postgres
        requestsPerSec: (segmentsIn(port) - t0.segs) / wall,
        ...(ticker !== undefined && t0.ticker !== undefined ? { tickerPerSec: (ticker - t0.ticker) / wall } : {}),
      };
    } finally {
      close();
    }
  });
}

/** The seed design at its floor: the row trigger's pg_notify read by a plain LISTEN, no server. */
async function seedListener(ctx: RunContext): Promise<{ write: (note: string) => Promise<number>; close: () => Promise<void> }> {
  const url = await ctx.pg.createDatabase('pgrelay_bench_rest_seed');
  await prepareDatabase(url, 'ws');
  const listener = new pg.Client({ connectionString: url });
  const writer = new pg.Client({ connectionString: url });
  await listener.connect();
  await writer.connect();
  let waiting: ((ts: number) => void) | undefined;
  listener.on('notification', (n) => {
    const at = receiptTime();
    const row = (JSON.parse(n.payload!) as { row: { ts: string } }).row;
    waiting?.(at - rowTime(row.ts));
  });
  await listener.query('listen orders_changes');
  return {
    write: (note) => new Promise<number>((resolve, reject) => {
      waiting = resolve;
      writer.query(`insert into orders (tenant_id, customer, amount, status) values ('t0', $1, 1, 'open')`, [note]).catch(reject);
    }),
    close: async () => {
      await listener.end();
      await writer.end();
      await ctx.pg.dropDatabase('pgrelay_bench_rest_seed');
    },
  };
}

/** First change after `gap` ms of rest, `rounds` times per mode, modes in rotating order. Latencies in ms per mode. */
async function firstChange(ctx: RunContext, modes: TargetName[], o: typeof restDefaults): Promise<Map<string, number[]>> {
  const tokens = await tokensFor(ctx.secret, 1);
  const out = new Map<string, number[]>([['seed', []], ...modes.map((m): [string, number[]] => [m, []])]);
  const seed = await seedListener(ctx);
  const relays: Array<{ mode: TargetName; write: (note: string) => Promise<number>; stop: () => Promise<void> }> = [];
  try {
    for (const mode of modes) {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let ready!: (w: (note: string) => Promise<number>) => void;
      const writeFn = new Promise<(note: string) => Promise<number>>((r) => (ready = r));
      const done = withTarget(ctx, mode, {}, async ({ server, databaseUrl }) => {
        let waiting: ((lat: number) => void) | undefined;
        const close = await subscriber(mode, server.baseUrl, tokens.t0!, (d) => {
          if (d.op === 'insert') waiting?.(receiptTime() - rowTime(String(d.row.ts)));
        });
        const writer = new pg.Client({ connectionString: databaseUrl });
        await writer.connect();
        ready((note) => new Promise<number>((resolve, reject) => {
          waiting = resolve;
          writer.query(`insert into orders (tenant_id, customer, amount, status) values ('t0', $1, 1, 'open')`, [note]).catch(reject);
        }));
        await held;
        await writer.end();
        close();
      });
      done.catch(() => undefined);
      const write = await Promise.race([writeFn, done.then(() => { throw new Error(`${mode} stopped`); })]);
      relays.push({ mode, write, stop: async () => { release(); await done; } });
    }
    const all: Array<{ name: string; write: (note: string) => Promise<number> }> = [{ name: 'seed', write: seed.write }, ...relays.map((r) => ({ name: r.mode, write: r.write }))];
    // every mode rests before its first measured write, as in every later round
    await sleep(o.gap);
    for (let round = 0; round < o.rounds; round++) {
      for (let k = 0; k < all.length; k++) {
        const m = all[(round + k) % all.length]!;
        await sleep(o.gap);
        const lat = await Promise.race([m.write(`round ${round}`), sleep(10_000).then(() => NaN)]);
        out.get(m.name)!.push(lat);
        process.stderr.write(`rest: round ${round + 1}, ${m.name}: ${lat.toFixed(2)} ms\n`);
      }
    }
  } finally {
    for (const r of relays) await r.stop();
    await seed.close();
  }
  return out;
}

const spread = (xs: number[], f: (x: number) => string) => (xs.length > 1 ? `${f(Math.min(...xs))}–${f(Math.max(...xs))}` : '');
const pct = (v: number) => `${v.toFixed(2)} %`;

async function restBenchmark(ctx: RunContext, flags: Flags, command: string): Promise<void> {
  const base = flags.bool('quick') ? restQuick : restDefaults;
  const o = { seconds: flags.num('seconds', base.seconds), settle: flags.num('settle', base.settle), repeat: flags.num('repeat', base.repeat), rounds: flags.num('rounds', base.rounds), gap: flags.num('gap', base.gap) };
  const modes = flags.list('targets', ['pgrelay', 'pgrelay-poll', 'socketio', 'ws']) as TargetName[];
  const load = await backgroundLoad();
  const parts = flags.list('parts', ['rest', 'first-change']);

  const runs: RestRun[] = [];
  if (parts.includes('rest')) {
    for (let r = 0; r < o.repeat; r++) {
      for (let k = 0; k < modes.length; k++) {
        const target = modes[(r + k) % modes.length]!;
        process.stderr.write(`rest: repeat ${r + 1}, ${target}: ${o.settle} s to settle, ${o.seconds} s at rest...\n`);
        const run = await atRest(ctx, target, o);
        process.stderr.write(`rest:   server ${pct(run.serverCpu)}, Postgres ${pct(run.postgresCpu)}, ${run.requestsPerSec.toFixed(1)} requests/s\n`);
        runs.push(run);
      }
    }
  }
  const first = parts.includes('first-change') ? await firstChange(ctx, modes.filter((m) => m.startsWith('pgrelay')), o) : new Map<string, number[]>();

  const of = (t: TargetName) => runs.filter((r) => r.target === t);
  const restRows = modes.filter((t) => of(t).length > 0).map((t) => {
    const rs = of(t);
    const total = rs.map((r) => r.serverCpu + r.postgresCpu);
    const ticker = rs.map((r) => r.tickerPerSec).filter((x): x is number => x !== undefined);
    return [
      targetLabel[t],
      `${pct(median(rs.map((r) => r.serverCpu)))} (${spread(rs.map((r) => r.serverCpu), pct)})`,
      `${pct(median(rs.map((r) => r.postgresCpu)))} (${spread(rs.map((r) => r.postgresCpu), pct)})`,
      `${pct(median(total))} (${spread(total, pct)})`,
      `${median(rs.map((r) => r.requestsPerSec)).toFixed(1)} (${spread(rs.map((r) => r.requestsPerSec), (v) => v.toFixed(1))})`,
      ticker.length ? median(ticker).toFixed(1) : '',
    ];
  });
  const p50 = (name: string) => median((first.get(name) ?? []).filter(Number.isFinite));
  const firstRows = [...first].map(([name, xs]) => [
    name === 'seed' ? 'seed design: row trigger pg_notify, read by LISTEN (no server)' : `${targetLabel[name as TargetName]} (relay, WebSocket)`,
    ms(p50(name)), spread(xs.filter(Number.isFinite), ms), String(xs.filter((x) => !Number.isFinite(x)).length), xs.map((x) => x.toFixed(2)).join(', '),
  ]);
  const rest = runs.length ? of('pgrelay') : [];
  const goals: Array<[string, string, boolean | undefined]> = [];
  if (rest.length) {
    const total = median(rest.map((r) => r.serverCpu + r.postgresCpu));
    const req = median(rest.map((r) => r.requestsPerSec));
    goals.push(['pgrelay at rest: relay + every Postgres process ≤ 0.5 % of a core', pct(total), total <= 0.5]);
    goals.push(['pgrelay at rest: ≤ 2 requests per second to Postgres', req.toFixed(1), req <= 2]);
  }
  if (first.has('pgrelay')) {
    const d = p50('pgrelay') - p50('seed');
    goals.push(['first change after a rest: pgrelay p50 ≤ the seed design\'s + 2 ms', `${p50('pgrelay').toFixed(2)} − ${p50('seed').toFixed(2)} = ${d.toFixed(2)} ms`, d <= 2]);
  }
  const m = machine();
  const md = [
    '## Rest: nothing written, and the first change after a rest',
    '',
    `- Command: \`${command}\``,
    `- Date: ${new Date().toISOString()}; machine: ${describeMachine(m)}; CPUs busy with other work just before the run: ${load.toFixed(0)} %`,
    `- Postgres: ${ctx.pg.description}`,
    `- At rest: each mode in a fresh database, one subscriber (tenant t0, \`orders\`), ${o.settle} s to settle, then ${o.seconds} s with nothing written; ${o.repeat} repeat(s), modes in rotating order, medians (min–max). CPU = utime + stime from /proc, in % of one core: the server process, and every Postgres process (postmaster, backends, background workers, and backends that exited meanwhile). Requests = data segments Postgres received on all its connections (\`ss -ti\`, data_segs_in): each query, or each batch of pipelined ones, is one. "pgrelay, ticker polling" is pgrelay on a database with \`relay.wake = off\`: its ticker looks every 1–5 ms, as pgrelay 0.2 did everywhere.`,
    `- First change: ${o.rounds} rounds; in each, every mode (order rotating) rests ${o.gap} ms, then one autocommit INSERT; latency = receipt − the row's \`ts\` (clock_timestamp(), same host clock). The seed design is the baselines' row trigger (\`pg_notify\` of row_to_json) read by a plain LISTEN connection, with no server in between.`,
    '',
    runs.length ? table(['mode', 'server process CPU', 'Postgres CPU', 'total', 'requests/s to Postgres', "pgrelay's ticker statements/s"], restRows) : '',
    '',
    first.size ? table(['first change after a rest', 'p50', 'min–max', 'lost', 'each round, ms'], firstRows) : '',
    '',
    table(['goal', 'measured', 'result'], goals.map(([g, v, ok]) => [g, v, verdict(ok)])),
  ].join('\n');
  process.stdout.write(`\n${md}\n`);
  await writeSection('rest', md);
}

/**
 * Benchmark: a system at rest and the first change after a rest (issue 22). At rest: nothing written for --seconds,
 * one subscriber; CPU of the server process and of every Postgres process, and requests to Postgres (data segments
 * Postgres received, from `ss`), for pgrelay, pgrelay with its ticker polling, and the baselines, interleaved.
 * First change: --rounds rounds, each writing one row after --gap ms of rest to each mode in turn (the order rotates),
 * latency = receipt − the row's clock_timestamp(); the seed design (the baselines' row trigger, read by a plain LISTEN)
 * beside pgrelay (a relay, one WebSocket subscriber).
 */
export const rest: Benchmark = {
  name: 'rest',
  title: 'A system at rest (CPU, requests to Postgres) and the first change after a rest, against the seed design',
  usage: `--seconds 30 --settle 60 --repeat 3 (nothing written, one subscriber)   --rounds 8 --gap 2000 (the first change after a rest)
--targets pgrelay,pgrelay-poll,socketio,ws   --parts rest,first-change   --quick`,
  run: onSession(restBenchmark),
};
