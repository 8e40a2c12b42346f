// `pgrelay watch`, `pgrelay unwatch`, `pgrelay watched`.
import type { RelayWatched, WatchedRule } from '../../db/schema.js';
import { listWatched, unwatch, watch } from '../../db/watch.js';
import { PgRelayError } from '../../client/shared/errors.js';
import { parseArgs } from './args.js';
import { TextTable, type TextColumn } from './text-table.js';
import { withDb } from './with-db.js';
import { explainWatchError } from './watch-errors.js';
import { cliCommand } from '../ops/cli-command.js';

/** The text output of `watched`: how each table is captured, and every streamed column with its type. */
const watchedColumns: ReadonlyArray<TextColumn<RelayWatched>> = [
  { header: 'table', value: (r) => r.table },
  { header: 'tenant_column', value: (r) => r.tenant_column ?? '(none)' },
  { header: 'key', value: (r) => `${r.primary_key.join(',')}${r.key_source === 'primary key' ? '' : ` (${r.key_source})`}` },
  { header: 'excluded', value: (r) => r.exclude_columns.join(',') || '-' },
  { header: 'capturing', value: (r) => (r.capturing ? 'yes' : 'NO') },
  { header: 'rules', value: (r) => (r.rules.length === 0 ? '-' : r.rules.map(ruleText).join('; ')) },
  { header: 'columns', value: (r) => r.columns.map((c) => `${c.name} ${c.type}`).join(', ') },
];

/** `cashier: rows {"cajero_id":{"eq":{"claim":"sub"}}} columns id,total` (relay.allow). */
function ruleText(rule: WatchedRule): string {
  return `${rule.role}: rows ${rule.rows ? JSON.stringify(rule.rows) : 'all'} columns ${rule.columns ? rule.columns.join(',') : 'all'}`;
}

function oneTable(positionals: string[], command: string): string {
  if (positionals.length !== 1) throw new PgRelayError('bad_arguments', `Usage: pgrelay ${command} <table>; give exactly one table.`);
  return positionals[0]!;
}

export async function watchCommand(argv: readonly string[]): Promise<void> {
  const { positionals, options } = parseArgs(argv, ['tenant-column', 'exclude', 'key'], ['no-tenant']);
  const table = oneTable(positionals, 'watch');
  const tenant = options.get('tenant-column');
  if ((tenant === undefined) === !options.has('no-tenant')) {
    throw new PgRelayError('bad_arguments', 'Give either --tenant-column <column> or --no-tenant (a table whose changes only all-tenant tokens see).');
  }
  const list = (name: string) => (typeof options.get(name) === 'string' ? String(options.get(name)).split(',').map((c) => c.trim()).filter(Boolean) : undefined);
  const exclude = list('exclude') ?? [];
  const key = list('key');
  await withDb(async (db) => {
    try {
      await watch(db, table, typeof tenant === 'string' ? tenant : null, exclude, key);
    } catch (err) {
      throw await explainWatchError(db, table, err);
    }
  });
  console.log(`watching ${table}`);
}

export async function unwatchCommand(argv: readonly string[]): Promise<void> {
  const table = oneTable(parseArgs(argv, []).positionals, 'unwatch');
  await withDb(async (db) => {
    try {
      await unwatch(db, table);
    } catch (err) {
      throw await explainWatchError(db, table, err);
    }
  });
  console.log(`no longer watching ${table} (its history stays in relay.changes)`);
}

export async function watchedCommand(argv: readonly string[]): Promise<void> {
  const { options } = parseArgs(argv, [], ['json']);
  const rows = await withDb((db) => listWatched(db));
  if (options.has('json')) {
    for (const r of rows) console.log(JSON.stringify(r));
    return;
  }
  if (rows.length === 0) {
    console.log(`no watched tables; add one with ${cliCommand('watch <table> --tenant-column <column>')}`);
    return;
  }
  const table = new TextTable(watchedColumns, (text) => process.stdout.write(text));
  for (const r of rows) table.push(r);
  table.end();
}
