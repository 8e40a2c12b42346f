// The floor under every target: the same writes received by one plain LISTEN connection on the load CPU, with no server in between.
import pg from 'pg';
import { receiptTime, rowTime } from '../load/timestamps.js';
import { runWriter } from './fleet.js';
import { Histogram } from './histogram.js';
import type { LoadSpec } from './measure.js';
import type { RunContext } from './session.js';
import { prepareDatabase } from './targets.js';

export interface FloorResult {
  /** Inserts and updates committed: the notifications that are timed. */
  timed: number;
  received: number;
  latency: { p50: number; p90: number; p99: number; p999: number; max: number };
}

/** What Postgres and this machine cost before any server: commit → NOTIFY → a client, timed like the targets. */
export async function measureFloor(ctx: RunContext, spec: LoadSpec): Promise<FloorResult> {
  const name = 'pgrelay_bench_floor';
  const databaseUrl = await ctx.pg.createDatabase(name);
  const listener = new pg.Client({ connectionString: databaseUrl, application_name: 'pgrelay-bench-floor' });
  try {
    await prepareDatabase(databaseUrl, 'ws');
    await listener.connect();
    const h = new Histogram();
    let received = 0;
    listener.on('notification', (n) => {
      const now = receiptTime();
      const { op, row } = JSON.parse(n.payload ?? '{}') as { op: string; row: { mid: number; ts: string } };
      if (op === 'DELETE' || row.mid === 0) return;
      received++;
      h.record((now - rowTime(row.ts)) * 1000);
    });
    await listener.query('listen orders_changes');
    const w = await runWriter({
      cmd: 'run', databaseUrl, tenants: Array.from({ length: spec.t }, (_, i) => `t${i}`), rate: spec.r, duration: spec.d, warmup: spec.warmup,
      mix: spec.mix, midBase: 1, connections: Math.min(32, Math.max(4, Math.ceil(spec.r / 250))), seed: 42,
    });
    const timed = w.inserts + w.updates;
    for (let waited = 0; received < timed && waited < 3000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    const ms = (p: number) => h.percentile(p) / 1000;
    return { timed, received, latency: { p50: ms(50), p90: ms(90), p99: ms(99), p999: ms(99.9), max: h.max / 1000 } };
  } finally {
    await listener.end().catch(() => undefined);
    await ctx.pg.dropDatabase(name);
  }
}
