// Development mode of the console (`npm start` without DATABASE_URL): the tenants found in the watched tables, and dev tokens for them.
import pg from 'pg';
import { regclassOf } from '../../db/watch.js';
import { mintToken } from '../ops/dev-tokens.js';
import type { WatchedTables } from '../feed/watched-tables.js';

/** What the relay needs to mint development tokens: the embedded database's dev secret and where its state lives. */
export interface DevMode {
  /** The HS256 dev secret `npm start` generated (the same one `pgrelay token` signs with). */
  readonly secret: string;
  /** The state folder (RELAY_DATA_DIR), for the `watch` command the console shows. */
  readonly stateDir: string;
  /**
   * A URL that may read the watched tables, to list their tenants (the embedded database's owner). Default: the relay's
   * own, which as relay_reader cannot read them (the list is then empty).
   */
  readonly databaseUrl?: string;
}

/** Tenants listed per table, at most. */
const TENANTS_PER_TABLE = 50;

export class DevConsole {
  readonly #mode: DevMode;
  readonly #databaseUrl: string;
  readonly #tables: WatchedTables;
  readonly #env: NodeJS.ProcessEnv;

  constructor(mode: DevMode, databaseUrl: string, tables: WatchedTables, claims: { tenantClaim: string; audience?: string | undefined; issuer?: string | undefined }) {
    this.#mode = mode;
    this.#databaseUrl = mode.databaseUrl ?? databaseUrl;
    this.#tables = tables;
    // mintToken reads its settings as `pgrelay token` does, from variables: give it the relay's own
    this.#env = {
      RELAY_JWT_SECRET: mode.secret,
      RELAY_TENANT_CLAIM: claims.tenantClaim,
      ...(claims.audience ? { RELAY_JWT_AUDIENCE: claims.audience } : {}),
      ...(claims.issuer ? { RELAY_JWT_ISSUER: claims.issuer } : {}),
    };
  }

  get stateDir(): string {
    return this.#mode.stateDir;
  }

  /** A one-hour token for one tenant, or for all tenants. */
  token(request: { tenant?: string; allTenants?: boolean }): Promise<string> {
    return mintToken({ ...(request.tenant !== undefined ? { tenant: request.tenant } : {}), allTenants: request.allTenants === true, ttlSeconds: 3600 }, this.#env);
  }

  /** The distinct tenants of the watched tables (the embedded database's owner may read them all), sorted. */
  async tenants(): Promise<string[]> {
    const found = new Set<string>();
    // a session of its own, ended afterwards: a console click is rare, and the relay's pool stays as it was
    const client = new pg.Client({ connectionString: this.#databaseUrl, application_name: 'pgrelay-console' });
    await client.connect();
    try {
      for (const name of this.#tables.names()) {
        const t = this.#tables.get(name);
        if (!t?.tenantColumn) continue;
        const column = `"${t.tenantColumn.replace(/"/g, '""')}"`;
        const { rows } = await client
          .query<{ t: string }>(`select distinct ${column}::text as t from ${regclassOf(name)} where ${column} is not null order by 1 limit ${TENANTS_PER_TABLE}`)
          .catch(() => ({ rows: [] as Array<{ t: string }> }));
        for (const r of rows) found.add(r.t);
      }
    } finally {
      await client.end();
    }
    return [...found].sort();
  }
}
