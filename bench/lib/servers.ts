// The `--servers uws,ws` mode of the latency, fan-out and memory benchmarks: pgrelay on each server implementation, interleaved round by round, reported as medians and spread.
import type { Flags } from './args.js';
import { ratio, table } from './format.js';
import { backgroundLoad } from './machine.js';
import { median } from './median.js';
import { publish, sectionHeader } from './report.js';
import type { RunContext } from './session.js';

/** RELAY_SERVER values compared. */
export type ServerImpl = 'uws' | 'ws';

export const serverLabel: Record<ServerImpl, string> = { uws: 'pgrelay, uws (native uWebSockets.js)', ws: 'pgrelay, ws (the fallback)' };

const serversTargetLine = '- Targets: pgrelay (`relay/cli.ts start`) with `RELAY_SERVER=uws` (native uWebSockets.js) and with `RELAY_SERVER=ws` (the `ws` + `node:http` fallback), one fresh process and database per run, on the same pinned CPU; no baselines.';

export interface ServerRounds {
  servers: ServerImpl[];
  /** Rounds: each runs every server once, in the order given. */
  repeat: number;
}

/** `--servers uws,ws [--repeat 3]`; undefined when the flag is absent (the benchmark compares pgrelay with A and B). */
export function parseServers(flags: Flags): ServerRounds | undefined {
  const servers = flags.list('servers', []);
  if (servers.length === 0) return undefined;
  for (const s of servers) if (s !== 'uws' && s !== 'ws') throw new Error(`--servers takes uws and ws; got ${JSON.stringify(s)}.`);
  const repeat = flags.num('repeat', 3);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error('--repeat must be a whole number of rounds, at least 1.');
  return { servers: servers as ServerImpl[], repeat };
}

/** One measurement of one server in one round, with how busy the machine was just before it. */
export interface ServerRun<T> {
  server: ServerImpl;
  round: number;
  /** % of all CPUs busy over the second before the run, with nothing of this run's going. */
  background: number;
  result?: T;
  error?: string;
}

/** Runs `measure` for every server, round after round (uws, ws, uws, ws…), so that drift in the machine's load falls on both alike. */
export async function interleave<T>(rounds: ServerRounds, what: string, measure: (server: ServerImpl) => Promise<T>): Promise<Array<ServerRun<T>>> {
  const out: Array<ServerRun<T>> = [];
  for (let round = 1; round <= rounds.repeat; round++) {
    for (const server of rounds.servers) {
      const background = await backgroundLoad();
      process.stderr.write(`${what}: round ${round} of ${rounds.repeat}, RELAY_SERVER=${server} (machine ${background.toFixed(0)} % busy just before)...\n`);
      try {
        out.push({ server, round, background, result: await measure(server) });
      } catch (err) {
        const error = err instanceof Error ? err.message.split('\n')[0]! : String(err);
        process.stderr.write(`${what}: RELAY_SERVER=${server}, round ${round} failed: ${err instanceof Error ? err.message : String(err)}\n`);
        out.push({ server, round, background, error });
      }
    }
  }
  return out;
}

/** A figure of the table: how to read it from one run and show it. `sum` adds the rounds up (losses) instead of a median. */
export interface ServerColumn<T> {
  name: string;
  value: (r: T) => number;
  format: (v: number) => string;
  sum?: boolean;
}

/**
 * One row per server (median, then min–max over its rounds), then the ratio of the medians of the second server to the
 * first: `ws / uws` with the default order. The background column says how busy the machine was before the runs.
 */
export function serverTable<T>(runs: ReadonlyArray<ServerRun<T>>, rounds: ServerRounds, columns: ReadonlyArray<ServerColumn<T>>): string {
  const done = (s: ServerImpl) => runs.filter((r) => r.server === s && r.result !== undefined).map((r) => r.result!);
  const cell = (s: ServerImpl, c: ServerColumn<T>) => {
    // a figure a run did not produce (a fan-out step after a failed one) is left out, and the count says so
    const xs = done(s).map(c.value).filter(Number.isFinite);
    if (xs.length === 0) return 'n/a';
    if (c.sum) return c.format(xs.reduce((a, b) => a + b, 0));
    const of = xs.length < done(s).length ? `, ${xs.length} runs` : '';
    return xs.length === 1 ? `${c.format(xs[0]!)}${of ? ' (1 run)' : ''}` : `${c.format(median(xs))} (${c.format(Math.min(...xs))}–${c.format(Math.max(...xs))}${of})`;
  };
  const rows = rounds.servers.map((s) => {
    const bg = runs.filter((r) => r.server === s).map((r) => r.background);
    return [serverLabel[s], `${done(s).length} of ${rounds.repeat}`, `${median(bg).toFixed(0)} % (${Math.min(...bg).toFixed(0)}–${Math.max(...bg).toFixed(0)} %)`, ...columns.map((c) => cell(s, c))];
  });
  const [first, second] = rounds.servers;
  if (first && second) {
    const m = (s: ServerImpl, c: ServerColumn<T>) => median(done(s).map(c.value));
    rows.push([`${second} / ${first} (medians)`, '', '', ...columns.map((c) => (c.sum ? '' : ratio(m(second, c), m(first, c))))]);
  }
  return table(['server', 'runs', 'machine busy before', ...columns.map((c) => c.name)], rows);
}

/** The section's context with `background` the busiest the machine was before any of these runs (the header's warning). */
function busiestBefore<C extends { background: number }>(ctx: C, runs: ReadonlyArray<ServerRun<unknown>>): C {
  return { ...ctx, background: Math.max(ctx.background, ...runs.map((r) => r.background)) };
}

/** The runs that failed, one line each, after a blank line; nothing when every run ran. */
function failedRuns(runs: ReadonlyArray<ServerRun<unknown>>): string[] {
  const lines = runs.filter((r) => r.error !== undefined).map((r) => `- RELAY_SERVER=${r.server}, round ${r.round}: did not run: ${r.error}.`);
  return lines.length ? ['', ...lines] : [];
}

/** The `--servers` line of a benchmark's usage. */
export const serversUsage = '--servers uws,ws [--repeat 3]: pgrelay on each server implementation instead of the baselines, interleaved';

/** Publishes the section of a `--servers` run: its header (no baselines), `body` (what was measured, the tables), and the runs that failed. */
export async function publishServerRuns(id: string, ctx: RunContext, command: string, runs: ReadonlyArray<ServerRun<unknown>>, body: string[]): Promise<void> {
  await publish(id, [sectionHeader(id, command, busiestBefore(ctx, runs), serversTargetLine), ...body, ...failedRuns(runs)].join('\n'));
}
