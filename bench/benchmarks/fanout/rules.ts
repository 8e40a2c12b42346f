// Fan-out mode --rules (issue 15): the same load with and without a per-user access rule, interleaved and repeated; plus snapshot time with and without the rule.
import { SignJWT } from 'jose';
import pg from 'pg';
import WebSocket from 'ws';
import { sleep } from '../../../db/testing/wait.js';
import type { Flags } from '../../lib/args.js';
import { Fleet } from '../../lib/fleet.js';
import { describeMachine, machine } from '../../lib/machine.js';
import { int, ms, table } from '../../lib/format.js';
import { measure, type LoadResult } from '../../lib/measure.js';
import { median } from '../../lib/median.js';
import { saveRaw, writeSection } from '../../lib/results.js';
import { withTarget, type RunContext } from '../../lib/session.js';
import { parseMix } from '../latency.js';

type Mode = 'no rules' | 'rules';

/** Every row passes (customers are `customer-N`, users `uN`), so both modes deliver the same rows; the rule masks `amount`. */
const RULE = { rows: { customer: { neq: { claim: 'sub' } } }, columns: ['tenant_id', 'customer', 'status', 'mid', 'ts'] };

/** Tokens per tenant (`t3`) and, with rules, per user of a tenant (`t3/u7`): each user's claims compile a view of its own. */
async function tokens(secret: string, tenants: number, users: number): Promise<Record<string, string>> {
  const key = new TextEncoder().encode(secret);
  const sign = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('6h').sign(key);
  const out: Record<string, string> = {};
  for (let t = 0; t < tenants; t++) {
    out[`t${t}`] = await sign({ tenant_id: `t${t}`, role: 'clerk', sub: 'u0' });
    for (let u = 0; u < users; u++) out[`t${t}/u${u}`] = await sign({ tenant_id: `t${t}`, role: 'clerk', sub: `u${u}` });
  }
  return out;
}

/** Milliseconds from subscribe to the last snapshot page, `n` times in a row on one socket. */
async function snapshotTimes(url: string, token: string, n: number): Promise<number[]> {
  const ws = new WebSocket(url, ['pgrelay.v1', `bearer.${token}`]);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      let rows = 0;
      await new Promise<void>((resolve, reject) => {
        const onMessage = (data: WebSocket.RawData) => {
          const m = JSON.parse(data.toString()) as { type: string; sub?: string; id?: string; more?: boolean; rows?: unknown[]; message?: string };
          if (m.type === 'error') reject(new Error(m.message));
          if (m.type === 'snapshot' && m.sub === `s${i}`) {
            rows += m.rows!.length;
            if (!m.more) {
              ws.off('message', onMessage);
              resolve();
            }
          }
        };
        ws.on('message', onMessage);
        ws.send(JSON.stringify({ type: 'subscribe', id: `s${i}`, table: 'public.orders', snapshot: true }));
      });
      times.push(performance.now() - t0);
      if (rows < 10_000) throw new Error(`a snapshot had ${rows} rows, expected at least 10,000`);
      ws.send(JSON.stringify({ type: 'unsubscribe', id: `s${i}` }));
    }
  } finally {
    ws.close();
  }
  return times;
}

const spread = (xs: number[], f: (x: number) => string) => `${f(Math.min(...xs))}–${f(Math.max(...xs))}`;

interface Run { mode: Mode; repeat: number; load: LoadResult; snapshotMs: number[] }

export async function fanoutRulesBenchmark(ctx: RunContext, flags: Flags, command: string): Promise<void> {
  const o = { t: flags.num('t', 50), users: flags.num('users', 20), r: flags.num('r', 200), d: flags.num('d', 6), warmup: flags.num('warmup', 1), repeats: flags.num('repeats', 3), snapshotRows: flags.num('snapshot-rows', 20_000), snapshots: flags.num('snapshots', 10) };
  const n = o.t * o.users;
  const mix = parseMix(flags);
  const runs: Run[] = [];
  for (let repeat = 0; repeat < o.repeats; repeat++) {
    // interleaved, the order alternating per repeat: drift on a shared machine falls on both modes alike
    const order: Mode[] = repeat % 2 === 0 ? ['no rules', 'rules'] : ['rules', 'no rules'];
    for (const mode of order) {
      const allTokens = await tokens(ctx.secret, o.t, o.users);
      // without rules every user of a tenant holds the tenant's token; with rules each holds its own
      const tokenOf = mode === 'rules' ? allTokens : Object.fromEntries(Object.entries(allTokens).map(([k, v]) => [k, allTokens[k.split('/')[0]!] ?? v]));
      const run = await withTarget(ctx, 'pgrelay', { nofile: n + 4096 }, async ({ server, databaseUrl }) => {
        const admin = new pg.Client({ connectionString: databaseUrl });
        await admin.connect();
        try {
          if (mode === 'rules') await admin.query(`select relay.allow('orders', 'clerk', rows => $1::jsonb, columns => $2::name[])`, [JSON.stringify(RULE.rows), RULE.columns]);
          await sleep(500);
          const fleet = new Fleet(1, { nofile: n + 4096 });
          try {
            const c = await fleet.connect('pgrelay', server.baseUrl, tokenOf, n, o.t, { users: o.users });
            if (c.failed > 0) throw new Error(`${c.failed} of ${n} connections failed (${c.errors.join('; ')})`);
            await sleep(500);
            process.stderr.write(`fanout --rules: ${mode}, repeat ${repeat + 1}: ${n} sockets × ${o.r} tx/s...\n`);
            const load = await measure(server, fleet, databaseUrl, { n, t: o.t, r: o.r, d: o.d, warmup: o.warmup, mix }, (repeat * 2 + (mode === 'rules' ? 1 : 0) + 1) * 100_000_000);
            await fleet.close();
            await admin.query(`insert into orders (tenant_id, customer, amount, status) select 'snap', 'customer-' || g, g, 'new' from generate_series(1, $1::int) g`, [o.snapshotRows]);
            // the snapshot is exact at the last numbered position: wait for the ticker to number the insert
            for (let i = 0; i < 500; i++) {
              const { rows } = await admin.query(`select exists (select 1 from relay.log l where not exists (select 1 from relay.transactions t where t.txid = l.txid)) as pending`);
              if (!rows[0].pending) break;
              await sleep(20);
            }
            await sleep(200);
            const snapToken = await new SignJWT({ tenant_id: 'snap', role: 'clerk', sub: 'u1' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(ctx.secret));
            const snapshotMs = await snapshotTimes(`${server.baseUrl.replace(/^http/, 'ws')}/ws`, snapToken, o.snapshots);
            return { mode, repeat, load, snapshotMs };
          } finally {
            await fleet.close().catch(() => undefined);
          }
        } finally {
          await admin.end();
        }
      });
      runs.push(run);
    }
  }
  await saveRaw('fanout-rules', { options: o, rule: RULE, runs });

  const rows = (['no rules', 'rules'] as Mode[]).map((mode) => {
    const mine = runs.filter((r) => r.mode === mode);
    const f = (pick: (r: Run) => number, fmt: (x: number) => string) => `${fmt(median(mine.map(pick)))} (${spread(mine.map(pick), fmt)})`;
    return [
      mode,
      f((r) => r.load.deliveredPerSec, int),
      f((r) => r.load.latency.p50, ms),
      f((r) => r.load.latency.p99, ms),
      f((r) => r.load.serverCpu, (x) => `${x.toFixed(0)} %`),
      f((r) => (r.load.serverCpu / 100 / r.load.deliveredPerSec) * 1e6, (x) => x.toFixed(1)),
      `${int(mine.reduce((s, r) => s + r.load.lost + r.load.duplicates, 0))}`,
      f((r) => median(r.snapshotMs), ms),
    ];
  });
  const section = [
    '## 2b. Fan-out and snapshots with access rules',
    '',
    `- Command: \`${command}\``,
    `- Load: ${o.t} tenants × ${o.users} sockets (${int(n)}), ${o.r} tx/s (inserts, updates, deletes ${mix.join('/')} %) spread over the tenants for ${o.d} s after ${o.warmup} s of warm-up, so each transaction reaches the ${o.users} sockets of its tenant. **rules**: every socket holds its own token (role \`clerk\`, \`sub\` = its user), and \`orders\` has the rule \`relay.allow('orders', 'clerk', rows => '${JSON.stringify(RULE.rows)}', columns => '{${RULE.columns.join(',')}}')\`: a per-user view (${o.users} compiled views and serializations per tenant instead of one), which every row passes, so both modes deliver the same rows. **no rules**: the same sockets with one token per tenant, no rule.`,
    `- Snapshots: ${o.snapshots} in a row on one socket of a tenant with ${int(o.snapshotRows)} rows, subscribe → last page; with the rule the condition goes to Postgres (relay.snapshot's filter) and the relay drops the masked column from each row.`,
    `- Runs: the two modes interleaved, ${o.repeats} repeat(s), the order alternating; each run on a fresh database and relay. Figures are medians with the spread (min–max) over the repeats.`,
    `- Machine: ${describeMachine(machine())}; Postgres: ${ctx.pg.description}; date ${new Date().toISOString()}; CPUs ${ctx.background.toFixed(0)} % busy with other work just before the run${ctx.background > 10 ? ' — the machine was shared (colleagues running tests): read the ratio between modes, not the absolute figures' : ''}.`,
    '',
    table(['mode', 'deliveries/s', 'p50 ms', 'p99 ms', 'relay CPU', 'relay µs CPU / delivery', 'lost + duplicated', 'snapshot ms (median of runs)'], rows),
  ].join('\n');
  await writeSection('fanout-rules', section);
  process.stdout.write(`${section}\n`);
}
