// `pgrelay tail [--tenant x] [--table t] [--since seq]`: the live stream read straight from Postgres, one readable line per change, with who made it.
import { readAudit, seqBefore, type AuditRow } from '../../db/audit.js';
import { createKysely, createPool } from '../../db/kysely.js';
import { Ticker } from '../../db/ticker/ticker.js';
import { qualifyTable } from '../../client/shared/protocol.js';
import { backoff } from '../../client/shared/backoff.js';
import { ChangeFeed } from '../feed/change-feed.js';
import { PgRelayError, describeError } from '../../client/shared/errors.js';
import { pgListenSession } from '../feed/listen-session.js';
import { createLogger } from '../ops/log.js';
import { createMetrics } from '../ops/metrics.js';
import { parseArgs } from './args.js';
import { databaseUrl } from './database-url.js';

/** `#seq  committed_at  tenant  table  op  pk  db_user=… [app=…] [actor=…] [origin=…]  what changed`. */
export function formatTailLine(e: AuditRow): string {
  let detail = '';
  const old = e.old as Record<string, unknown> | null;
  const row = e.row as Record<string, unknown> | null;
  if (e.op === 'update' && old) {
    detail = Object.keys(old).map((k) => `${k}: ${JSON.stringify(old[k])} → ${JSON.stringify(row?.[k])}`).join(', ');
  } else if (e.op === 'insert' && row) {
    detail = JSON.stringify(row);
  }
  const who = [`db_user=${e.db_user}`, e.application_name && `app=${e.application_name}`, e.actor !== null && `actor=${e.actor}`, e.origin !== null && `origin=${e.origin}`]
    .filter(Boolean).join(' ');
  return [`#${e.seq}`, e.committed_at, e.tenant ?? '-', e.table, e.op, e.pk ? JSON.stringify(e.pk) : '', who, detail].filter(Boolean).join('  ');
}

function parseSeq(raw: string | true | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw)) {
    throw new PgRelayError('bad_arguments', `--since takes a seq (a non-negative integer, as audit and tail print it); got ${JSON.stringify(raw)}.`);
  }
  return Number(raw);
}

/**
 * The feed says up to which seq the log is complete; the lines come from relay.audit, the same rows `pgrelay audit`
 * prints. Without --since it starts at the last transaction committed before the command started, so nothing
 * written while it connects is missed.
 */
export async function tailCommand(argv: readonly string[]): Promise<void> {
  const startedAt = new Date(performance.timeOrigin);
  const { options } = parseArgs(argv, ['tenant', 'table', 'since']);
  const since = parseSeq(options.get('since'));
  const tenant = typeof options.get('tenant') === 'string' ? String(options.get('tenant')) : undefined;
  const table = typeof options.get('table') === 'string' ? qualifyTable(String(options.get('table'))) : undefined;
  if (since === undefined) process.stderr.write('pgrelay tail: connecting to the database; every change committed from now on will be shown\n');
  const url = await databaseUrl();
  const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const db = createKysely(createPool(url, { max: 2, applicationName: 'pgrelay-tail' }));
  // with no relay running nothing would number new transactions: tail is a ticker candidate too
  const ticker = new Ticker({ databaseUrl: url, log });
  ticker.start();
  let complete = 0;
  let wake: (() => void) | undefined;
  const advance = (seq: number) => {
    complete = Math.max(complete, seq);
    wake?.();
  };
  const feed = new ChangeFeed({
    db,
    session: pgListenSession(url, ['relay']),
    log,
    metrics: createMetrics(),
    historyTx: 0,
    historyBytes: 0,
    onConfig: () => undefined,
    onTransaction: (tx) => advance(tx.seq),
  });
  let stopped = false;
  const stop = () => {
    stopped = true;
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await feed.start();
    advance(feed.position);
    let printed = since ?? (await seqBefore(db, startedAt));
    process.stderr.write(`pgrelay tail: following from #${printed} (Ctrl-C to stop)\n`);
    for (let attempt = 0; !stopped;) {
      if (printed >= complete) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      const upTo = complete;
      try {
        for await (const e of readAudit(db, { afterSeq: printed, upToSeq: upTo, ...(tenant !== undefined ? { tenant } : {}), ...(table ? { table } : {}) })) {
          process.stdout.write(`${formatTailLine(e)}\n`);
          printed = e.seq - 1; // a transaction's lines are printed again only if the read fails halfway through it
        }
        printed = upTo;
        attempt = 0;
      } catch (err) {
        process.stderr.write(`pgrelay tail: reading the log failed (${describeError(err)}); retrying\n`);
        await new Promise((r) => setTimeout(r, backoff(attempt++, 200, 5_000)));
      }
    }
  } finally {
    await ticker.close();
    await feed.close();
    await db.destroy();
  }
}
