// `pgrelay tail [--tenant x] [--table t]`: the live stream read straight from Postgres, one readable line per change.
import { createKysely, createPool } from '../../db/kysely.js';
import { Ticker } from '../../db/ticker.js';
import { qualifyTable } from '../../client/protocol.js';
import { ChangeFeed } from '../change-feed.js';
import { pgListenSession } from '../listen-session.js';
import { createLogger } from '../log.js';
import { createMetrics } from '../metrics.js';
import type { RelayTx } from '../relay-tx.js';
import { databaseUrl, parseArgs } from './args.js';

export function formatChangeLine(tx: RelayTx, c: RelayTx['changes'][number]): string {
  const pk = c.pk ? JSON.stringify(c.pk) : '';
  let detail = '';
  if (c.op === 'update' && c.old) {
    detail = Object.keys(c.old).map((k) => `${k}: ${JSON.stringify(c.old![k])} → ${JSON.stringify(c.row?.[k])}`).join(', ');
  } else if (c.op === 'insert' && c.row) {
    detail = JSON.stringify(c.row);
  }
  return [`#${tx.seq}`, tx.at, c.tenant ?? '-', c.table, c.op, pk, detail].filter(Boolean).join('  ');
}

export async function tailCommand(argv: readonly string[]): Promise<void> {
  const { options } = parseArgs(argv, ['tenant', 'table']);
  const tenant = options.get('tenant');
  const table = typeof options.get('table') === 'string' ? qualifyTable(String(options.get('table'))) : undefined;
  const url = databaseUrl();
  const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const db = createKysely(createPool(url, { max: 2, applicationName: 'pgrelay-tail' }));
  // with no relay running nothing would number new transactions: tail is a ticker candidate too
  const ticker = new Ticker({ databaseUrl: url, log });
  ticker.start();
  const feed = new ChangeFeed({
    db,
    session: pgListenSession(url, ['relay']),
    log,
    metrics: createMetrics(),
    historyTx: 0,
    onConfig: () => undefined,
    onTransaction: (tx) => {
      for (const c of tx.changes) {
        if (table && c.table !== table) continue;
        if (typeof tenant === 'string' && c.tenant !== tenant && c.op !== 'truncate') continue;
        process.stdout.write(`${formatChangeLine(tx, c)}\n`);
      }
    },
  });
  await feed.start();
  process.stderr.write(`pgrelay tail: following from #${feed.position} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await ticker.close();
  await feed.close();
  await db.destroy();
}
