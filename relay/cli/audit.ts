// `pgrelay audit [--table t] [--tenant x] [--since 1h] [--limit n] [--json]`: what was emitted, by whom, when.
import { auditJson, parseSince, readAudit, type AuditRow } from '../../db/audit.js';
import { PgRelayError } from '../../client/shared/errors.js';
import { parseArgs } from './args.js';
import { TextTable, type TextColumn } from './text-table.js';
import { withDb } from './with-db.js';

const json = (v: unknown) => (v === null || v === undefined ? '-' : JSON.stringify(v));

/** The text output's columns: everything `--json` has but the row values, plus client_addr. */
export const auditColumns: ReadonlyArray<TextColumn<AuditRow>> = [
  { header: 'seq', value: (e) => String(e.seq), align: 'right' },
  { header: 'committed_at', value: (e) => e.committed_at },
  { header: 'tenant', value: (e) => e.tenant ?? '-', maxWidth: 16 },
  { header: 'table', value: (e) => e.table, maxWidth: 32 },
  { header: 'op', value: (e) => e.op },
  { header: 'pk', value: (e) => json(e.pk), maxWidth: 24 },
  {
    header: 'changed',
    value: (e) => (e.op === 'update' && e.old && typeof e.old === 'object' ? Object.keys(e.old).join(',') || '-' : '-'),
    maxWidth: 24,
  },
  { header: 'db_user', value: (e) => e.db_user, maxWidth: 16 },
  { header: 'application_name', value: (e) => e.application_name || '-', maxWidth: 24 },
  { header: 'client_addr', value: (e) => e.client_addr ?? 'local' },
  { header: 'actor', value: (e) => e.actor ?? '-', maxWidth: 16 },
  { header: 'origin', value: (e) => e.origin ?? '-', maxWidth: 16 },
];

export async function auditCommand(argv: readonly string[]): Promise<void> {
  const { options } = parseArgs(argv, ['table', 'tenant', 'since', 'limit'], ['json']);
  const sinceRaw = options.get('since');
  const since = typeof sinceRaw === 'string' ? parseSince(sinceRaw) : undefined;
  if (typeof sinceRaw === 'string' && !since) {
    throw new PgRelayError('bad_arguments', `--since takes a duration such as 30m, 1h, 2d or a date such as 2026-11-01; got ${JSON.stringify(sinceRaw)}.`);
  }
  const limitRaw = options.get('limit');
  const limit = typeof limitRaw === 'string' ? Number(limitRaw) : undefined;
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
    throw new PgRelayError('bad_arguments', `--limit takes a positive integer; got ${JSON.stringify(limitRaw)}.`);
  }
  const asJson = options.has('json');
  const table = asJson ? undefined : new TextTable(auditColumns, (text) => process.stdout.write(text));
  await withDb(async (db) => {
    for await (const entry of readAudit(db, {
      ...(typeof options.get('table') === 'string' ? { table: String(options.get('table')) } : {}),
      ...(typeof options.get('tenant') === 'string' ? { tenant: String(options.get('tenant')) } : {}),
      ...(since ? { since } : {}),
      ...(limit ? { limit } : {}),
    })) {
      if (table) table.push(entry);
      else process.stdout.write(`${JSON.stringify(auditJson(entry))}\n`);
    }
  });
  table?.end();
}
