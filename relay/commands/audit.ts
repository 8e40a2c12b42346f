// `pgrelay audit [--table t] [--tenant x] [--since 1h] [--limit n] [--json]`: what was emitted, by whom, when.
import { auditHeader, formatAuditLine, parseSince, readAudit } from '../../db/audit.js';
import { PgRelayError } from '../../db/errors.js';
import { parseArgs } from './args.js';
import { withDb } from './with-db.js';

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
  const json = options.has('json');
  await withDb(async (db) => {
    if (!json) process.stdout.write(`${auditHeader}\n`);
    for await (const entry of readAudit(db, {
      ...(typeof options.get('table') === 'string' ? { table: String(options.get('table')) } : {}),
      ...(typeof options.get('tenant') === 'string' ? { tenant: String(options.get('tenant')) } : {}),
      ...(since ? { since } : {}),
      ...(limit ? { limit } : {}),
    })) {
      process.stdout.write(`${json ? JSON.stringify(entry) : formatAuditLine(entry)}\n`);
    }
  });
}
