// `pgrelay watch`, `pgrelay unwatch`, `pgrelay watched`.
import { listWatched, unwatch, watch } from '../../db/watch.js';
import { PgRelayError } from '../../db/errors.js';
import { parseArgs } from './args.js';
import { withDb } from './with-db.js';

function oneTable(positionals: string[], command: string): string {
  if (positionals.length !== 1) throw new PgRelayError('bad_arguments', `Usage: pgrelay ${command} <table>; give exactly one table.`);
  return positionals[0]!;
}

export async function watchCommand(argv: readonly string[]): Promise<void> {
  const { positionals, options } = parseArgs(argv, ['tenant-column', 'exclude'], ['no-tenant']);
  const table = oneTable(positionals, 'watch');
  const tenant = options.get('tenant-column');
  if ((tenant === undefined) === !options.has('no-tenant')) {
    throw new PgRelayError('bad_arguments', 'Give either --tenant-column <column> or --no-tenant (a table whose changes only all-tenant tokens see).');
  }
  const exclude = typeof options.get('exclude') === 'string' ? String(options.get('exclude')).split(',').map((c) => c.trim()).filter(Boolean) : [];
  await withDb((db) => watch(db, table, typeof tenant === 'string' ? tenant : null, exclude));
  console.log(`watching ${table}`);
}

export async function unwatchCommand(argv: readonly string[]): Promise<void> {
  const table = oneTable(parseArgs(argv, []).positionals, 'unwatch');
  await withDb((db) => unwatch(db, table));
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
    console.log('no watched tables; add one with pgrelay watch <table> --tenant-column <column>');
    return;
  }
  console.log(['table'.padEnd(32), 'tenant column'.padEnd(16), 'primary key'.padEnd(16), 'excluded'.padEnd(20), 'capturing'].join(' '));
  for (const r of rows) {
    console.log([r.table.padEnd(32), (r.tenant_column ?? '(none)').padEnd(16), r.primary_key.join(',').padEnd(16), (r.exclude_columns.join(',') || '-').padEnd(20), r.capturing ? 'yes' : 'NO'].join(' '));
  }
}
