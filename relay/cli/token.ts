// `pgrelay token --tenant <id> [--tables a,b] [--all-tenants] [--sub <id> [--name <text>]] [--ttl 1h]`: mints an HS256 development token.
import { PgRelayError } from '../../client/shared/errors.js';
import { parseArgs } from './args.js';
import { mintToken } from '../ops/dev-tokens.js';

const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

export async function tokenCommand(argv: readonly string[]): Promise<void> {
  const { options } = parseArgs(argv, ['tenant', 'tables', 'ttl', 'sub', 'name'], ['all-tenants']);
  const tenant = options.get('tenant');
  const allTenants = options.has('all-tenants');
  if (typeof tenant !== 'string' && !allTenants) throw new PgRelayError('bad_arguments', 'Give --tenant <id> or --all-tenants.');
  const ttl = String(options.get('ttl') ?? '1h');
  const m = /^(\d+)([smhd])$/.exec(ttl);
  if (!m) throw new PgRelayError('bad_arguments', `--ttl takes a duration such as 30m, 1h or 7d; got ${JSON.stringify(ttl)}.`);
  const [sub, name] = [options.get('sub'), options.get('name')];
  if (name !== undefined && sub === undefined) throw new PgRelayError('bad_arguments', '--name is the display name presence shows next to --sub: give --sub <id> too.');
  const tables = typeof options.get('tables') === 'string' ? String(options.get('tables')).split(',').map((t) => t.trim()).filter(Boolean) : undefined;
  const token = await mintToken({
    ...(typeof tenant === 'string' ? { tenant } : {}),
    ...(tables ? { tables } : {}),
    allTenants,
    ...(typeof sub === 'string' ? { sub } : {}),
    ...(typeof name === 'string' ? { name } : {}),
    ttlSeconds: Number(m[1]) * units[m[2]!]!,
  });
  process.stdout.write(`${token}\n`);
}
