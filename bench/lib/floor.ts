// The floor under every target: the same writes received by one plain LISTEN connection on the load CPU, with no server in between.
// Two floors: the baselines' trigger (channel orders_changes) and pgrelay's capture with its ticker (channel relay,
// changes inline); the second one, set against the pgrelay row, splits pgrelay's latency into what Postgres and the
// ticker cost it and what the relay adds.
import pg from 'pg';
import { sleep } from '../../db/testing/wait.js';
import { Ticker } from '../../db/ticker/ticker.js';
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

/** `mid` is a number in the baselines' payload and a string in pgrelay's (int8). */
type Row = { mid: number | string; ts: string };

/** What Postgres and this machine cost before any server: commit → NOTIFY → a client, timed like the targets. */
export async function measureFloor(ctx: RunContext, spec: LoadSpec, capture: 'baseline' | 'pgrelay' = 'baseline'): Promise<FloorResult> {
  const name = `pgrelay_bench_floor_${capture}`;
  const databaseUrl = await ctx.pg.createDatabase(name);
  const listener = new pg.Client({ connectionString: databaseUrl, application_name: 'pgrelay-bench-floor' });
  // pgrelay's NOTIFY comes from its ticker, which a relay runs: here one runs alone, in this process
  const ticker = capture === 'pgrelay' ? new Ticker({ databaseUrl, log: { info: () => undefined, warn: () => undefined } }) : undefined;
  try {
    await prepareDatabase(databaseUrl, capture === 'pgrelay' ? 'pgrelay' : 'ws');
    ticker?.start();
    await listener.connect();
    const h = new Histogram();
    let received = 0;
    const time = (now: number, op: string, row: Row | null) => {
      // warm-up rows have mid 0
      if (op.toUpperCase() === 'DELETE' || !row || Number(row.mid) === 0) return;
      received++;
      h.record((now - rowTime(row.ts)) * 1000);
    };
    listener.on('notification', (n) => {
      const now = receiptTime();
      const payload = JSON.parse(n.payload ?? '{}') as { op: string; row: Row; changes?: Array<{ op: string; row: Row | null }> };
      if (capture === 'baseline') time(now, payload.op, payload.row);
      else for (const c of payload.changes ?? []) time(now, c.op, c.row); // the bench's one-row transactions always travel inline
    });
    await listener.query(capture === 'pgrelay' ? 'listen relay' : 'listen orders_changes');
    const w = await runWriter({
      cmd: 'run', databaseUrl, tenants: Array.from({ length: spec.t }, (_, i) => `t${i}`), rate: spec.r, duration: spec.d, warmup: spec.warmup,
      mix: spec.mix, midBase: 1, connections: Math.min(32, Math.max(4, Math.ceil(spec.r / 250))), seed: 42,
    });
    const timed = w.inserts + w.updates;
    for (let waited = 0; received < timed && waited < 3000; waited += 20) await sleep(20);
    const ms = (p: number) => h.percentile(p) / 1000;
    return { timed, received, latency: { p50: ms(50), p90: ms(90), p99: ms(99), p999: ms(99.9), max: h.max / 1000 } };
  } finally {
    await ticker?.close();
    await listener.end().catch(() => undefined);
    await ctx.pg.dropDatabase(name);
  }
}
