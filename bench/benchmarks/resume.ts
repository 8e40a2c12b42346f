// Benchmark 4: a subscriber that missed 10,000 transactions catches up, from the relay's ring and from the log; the baselines have no resume at all.
import WebSocket from 'ws';
import { createRelayClient, type WebSocketConstructor } from '../../client/index.js';
import type { Flags } from '../lib/args.js';
import { onSession, type Benchmark } from '../lib/benchmark.js';
import { runWriter } from '../lib/fleet.js';
import { int, ms, table } from '../lib/format.js';
import { median } from '../lib/median.js';
import { goalsTable, publish, sectionHeader, type Goal } from '../lib/report.js';
import { saveRaw } from '../lib/results.js';
import { tokensFor, type RunContext } from '../lib/session.js';
import { parseTargets, prepareDatabase, startTarget, targetLabel, targetsUsage } from '../lib/targets.js';

export const resumeDefaults = { count: 10_000, noise: 5000, repeat: 3, history: 20_000, logHistory: 100 };
export const resumeQuick = { count: 1000, noise: 500, repeat: 2, history: 20_000, logHistory: 100 };

export interface CatchUp {
  /** From creating the client (connect, auth, subscribe) to the first missed transaction. */
  firstMs: number;
  /** … to the last. */
  totalMs: number;
  received: number;
  inOrder: boolean;
  duplicates: number;
}

export interface PathResult {
  path: 'ring' | 'log';
  historyTx: number;
  runs: CatchUp[];
  error?: string;
}

const WS = WebSocket as unknown as WebSocketConstructor;

/**
 * Subscribes `since` with the client library and times the catch-up of `count` transactions.
 * `position` resolves with the cursor once the relay has answered `subscribed` (a live subscription's starting point).
 */
function follow(url: string, token: string, since: number | undefined, count: number, timeoutMs: number): { position: Promise<number>; done: Promise<CatchUp> } {
  const t0 = performance.now();
  const seen = new Set<number>();
  const r: CatchUp = { firstMs: NaN, totalMs: NaN, received: 0, inOrder: true, duplicates: 0 };
  let last = since ?? -1;
  let settle: (err?: Error) => void = () => undefined;
  const done = new Promise<CatchUp>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve(r));
  });
  const client = createRelayClient({ url, token, WebSocket: WS, backoff: { minMs: 100, maxMs: 1000 } });
  const finish = (err?: Error) => {
    clearTimeout(timer);
    clearInterval(poll);
    client.close();
    settle(err);
  };
  const timer = setTimeout(() => finish(count === 0 ? undefined : new Error(`caught up ${r.received} of ${count} transactions within ${timeoutMs / 1000} s`)), timeoutMs);
  const sub = client.subscribe('orders', since === undefined ? {} : { since }, {
    onTransaction(tx) {
      if (r.received === 0) r.firstMs = performance.now() - t0;
      if (seen.has(tx.seq)) r.duplicates++;
      seen.add(tx.seq);
      if (tx.seq <= last) r.inOrder = false;
      last = tx.seq;
      r.received++;
      if (r.received === count) {
        r.totalMs = performance.now() - t0;
        finish();
      }
    },
    onError: (e) => finish(e),
    onReset: (reason) => finish(new Error(`the relay answered reset (${reason}) instead of resuming`)),
  });
  let found: (seq: number) => void = () => undefined;
  const position = new Promise<number>((resolve) => (found = resolve));
  const poll = setInterval(() => {
    if (sub.cursor === undefined) return;
    clearInterval(poll);
    found(sub.cursor);
    if (count === 0) finish();
  }, 5);
  done.catch(() => undefined);
  return { position: Promise.race([position, done.then(() => NaN)]), done };
}

async function resumeBenchmark(ctx: RunContext, flags: Flags, command: string): Promise<void> {
  const base = flags.bool('quick') ? resumeQuick : resumeDefaults;
  const o = {
    count: flags.num('count', base.count),
    noise: flags.num('noise', base.noise),
    repeat: Math.max(1, flags.num('repeat', base.repeat)),
    history: flags.num('history', base.history),
    logHistory: flags.num('log-history', base.logHistory),
  };
  const targets = parseTargets(flags.list('targets', ['pgrelay', 'socketio', 'ws']));
  const paths: PathResult[] = [];
  let setupError: string | undefined;
  if (targets.includes('pgrelay')) {
    const tokens = await tokensFor(ctx.secret, 10);
    const databaseUrl = await ctx.pg.createDatabase('pgrelay_bench_resume');
    try {
      await prepareDatabase(databaseUrl, 'pgrelay');
      let since: number | undefined;
      for (const path of ['ring', 'log'] as const) {
        const historyTx = path === 'ring' ? o.history : o.logHistory;
        const server = await startTarget('pgrelay', { databaseUrl, jwtSecret: ctx.secret, echo: ctx.echo, env: { RELAY_HISTORY_TX: String(historyTx) } });
        const url = `${server.baseUrl}/ws`;
        const result: PathResult = { path, historyTx, runs: [] };
        paths.push(result);
        try {
          if (since === undefined) {
            // The subscriber's position, then the transactions it misses while away (its tenant's, among other tenants').
            const first = follow(url, tokens.t0!, undefined, 0, 10_000);
            since = await first.position;
            await first.done;
            if (!Number.isFinite(since)) throw new Error('no `subscribed` position from the relay within 10 s');
            const observer = follow(url, tokens.t0!, undefined, o.count, 120_000);
            await observer.position;
            process.stderr.write(`resume: writing ${o.count} transactions of t0 among ${o.noise} of other tenants...\n`);
            const w = await runWriter({
              cmd: 'run', databaseUrl, tenants: Array.from({ length: 10 }, (_, i) => `t${i}`), rate: 0, duration: 0, warmup: 0,
              count: o.count, noise: o.noise, mix: [100, 0, 0], midBase: 1, connections: 8, seed: 7,
            });
            if (w.errors.length) throw new Error(`writer errors: ${w.errors.join('; ')}`);
            // The live observer has them all: the relay has read every transaction before the measurement starts.
            await observer.done;
          }
          for (let i = 0; i < o.repeat; i++) {
            process.stderr.write(`resume: ${path} path, run ${i + 1} of ${o.repeat}...\n`);
            result.runs.push(await follow(url, tokens.t0!, since, o.count, 60_000).done);
          }
        } catch (err) {
          result.error = err instanceof Error ? err.message.split('\n')[0]! : String(err);
          process.stderr.write(`resume: ${path} path failed: ${result.error}\n`);
          if (since === undefined) setupError = result.error;
        } finally {
          await server.stop();
        }
        if (setupError) break;
      }
    } catch (err) {
      setupError = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    } finally {
      await ctx.pg.dropDatabase('pgrelay_bench_resume');
    }
  }
  await saveRaw('resume', { options: o, paths, setupError });

  const rows: Array<Array<string | number>> = paths.map((p) => {
    const totals = p.runs.map((r) => r.totalMs);
    const exact = p.runs.length > 0 && p.runs.every((r) => r.received === o.count && r.inOrder && r.duplicates === 0);
    return [
      `pgrelay, ${p.path} path`,
      `RELAY_HISTORY_TX=${p.historyTx}`,
      int(o.count),
      p.runs.length ? p.runs.map((r) => ms(r.firstMs)).join(' / ') : 'n/a',
      p.runs.length ? totals.map(ms).join(' / ') : `failed: ${p.error ?? 'no run'}`,
      ms(median(totals)),
      p.runs.length ? int(o.count / (median(totals) / 1000)) : 'n/a',
      p.runs.length ? (exact ? 'yes' : 'NO') : 'n/a',
    ];
  });
  if (!targets.includes('pgrelay')) rows.push(['pgrelay', 'not run (not in --targets)', '', '', '', '', '', '']);
  for (const t of ['socketio', 'ws'] as const) if (targets.includes(t)) rows.push([targetLabel[t], 'no resume', int(o.count), '—', 'no resume: missed changes are gone', '—', '—', '—']);
  const goals: Goal[] = paths.map((p) => {
    const m = median(p.runs.map((r) => r.totalMs));
    const exact = p.runs.length > 0 && p.runs.every((r) => r.received === o.count && r.inOrder && r.duplicates === 0);
    return { name: `resume of ${int(o.count)} transactions < 1 s, ${p.path} path`, value: p.runs.length ? `${ms(m)} ms (median), ${exact ? 'exactly once, in order' : 'NOT exact'}` : (p.error ?? 'n/a'), ok: p.runs.length ? m < 1000 && exact : false };
  });
  const md = [
    sectionHeader('resume', command, ctx),
    `- A subscriber of tenant t0 takes its position, leaves, and misses ${int(o.count)} transactions of its tenant committed among ${int(o.noise)} of 9 other tenants. It comes back with the client library (\`createRelayClient\`, \`subscribe('orders', { since })\`); time from creating the client (connect, auth, subscribe) to the first and to the last missed transaction, ${o.repeat} runs each (shown run by run).`,
    `- Ring path: the relay that saw them live, \`RELAY_HISTORY_TX=${o.history}\`. Log path: a relay restarted with \`RELAY_HISTORY_TX=${o.logHistory}\`, so the cursor is older than its ring and is served from \`relay.changes\`.`,
    '',
    table(['target', 'path', 'missed', 'first tx ms', 'caught up ms (runs)', 'median ms', 'tx/s', 'exactly once, in order'], rows),
    '',
    goalsTable(goals),
    ...(setupError ? ['', `- pgrelay did not run: ${setupError}.`] : []),
  ].join('\n');
  await publish('resume', md);
}

export const resume: Benchmark = {
  name: 'resume',
  title: 'A subscriber that missed 10,000 transactions catches up, from the ring and from the log (section 4)',
  usage: `--count 10000 --noise 5000 --repeat 3 --history 20000 --log-history 100
${targetsUsage}`,
  run: onSession(resumeBenchmark),
};
