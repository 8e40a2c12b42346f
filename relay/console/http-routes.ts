// The console's HTTP side: the page, its icon and scripts, the tables a token may see, the relay's load per tenant (all-tenant tokens), and dev tokens.
import { AuthError, type Principal, type TokenVerifier } from '../routing/auth.js';
import type { ConsoleFiles, StaticFile } from './console-page.js';
import type { DevConsole } from './dev-console.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { Refusals } from '../edge/refusals.js';
import type { HttpReply, HttpRequest, RelayServer } from '../server/server.js';
import { watchCommand } from '../ops/watch-hint.js';
import { ruleViewFor } from '../routing/rules.js';
import type { WatchedTable, WatchedTables } from '../feed/watched-tables.js';

/** The table's access rules let this token subscribe (always, when it has none). */
function allowedByRules(table: WatchedTable, p: Principal): boolean {
  try {
    ruleViewFor(table, p);
    return true;
  } catch {
    return false;
  }
}

/** Connections and subscriptions of one tenant (`*` for all-tenant sockets), per table. */
export interface TenantLoad {
  tenant: string;
  connections: number;
  subscriptions: number;
  tables: Array<{ table: string; subscriptions: number }>;
}

/** What `GET /api/stats` answers. */
export interface RelayStats {
  position: number;
  connections: number;
  subscriptions: number;
  /** Busiest first, at most 200. */
  tenants: TenantLoad[];
}

export interface HttpRoutesOptions {
  verifier: TokenVerifier;
  tables: WatchedTables;
  files: ConsoleFiles;
  stats: () => RelayStats;
  metrics: Metrics;
  refusals: Refusals;
  log: Logger;
  /** Present only in embedded development mode. */
  dev: DevConsole | undefined;
}

/** Largest body `POST /api/dev-token` reads. */
const MAX_BODY = 4096;

const loopback = (remote: string) => /^(127\.|::1$|::ffff:127\.|(0000:){7}0001$)/i.test(remote);
/** The Host header names this machine: a page from another site that resolves its name to 127.0.0.1 (DNS rebinding) does not. */
const localHost = (host: string) => /^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/i.test(host);

/** A JSON answer; the API's answers are never cached. */
export function json(status: number, body: unknown, headers: Record<string, string> = { 'cache-control': 'no-store' }): HttpReply {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

function serve(file: StaticFile, req: HttpRequest): HttpReply {
  if (req.header('if-none-match') === file.etag) {
    return { status: 304, headers: { etag: file.etag, 'cache-control': file.cacheControl } };
  }
  return {
    status: 200,
    headers: { 'content-type': file.contentType, etag: file.etag, 'cache-control': file.cacheControl, 'x-content-type-options': 'nosniff' },
    body: file.body,
  };
}

export function registerHttpRoutes(server: RelayServer, o: HttpRoutesOptions): void {
  server.route('GET', '/', (req) => serve(o.files.page, req));
  server.route('GET', '/favicon.svg', (req) => serve(o.files.favicon, req));
  server.route('GET', '/favicon.ico', (req) => serve(o.files.favicon, req));
  for (const [name, script] of o.files.scripts) server.route('GET', `/console/${name}`, (req) => serve(script, req));

  /** Answers with `handle` for the principal of the request's `Authorization: Bearer` token; a refused token gets 401 with the reason. */
  const authorized = (handle: (p: Principal) => HttpReply) => async (req: HttpRequest): Promise<HttpReply> => {
    const token = /^bearer\s+(.+)$/i.exec(req.header('authorization'))?.[1]?.trim();
    let p: Principal;
    try {
      p = await o.verifier.verify(token);
    } catch (err) {
      const e = err instanceof AuthError ? err : new AuthError('malformed', 'token not accepted');
      o.metrics.authFailures.inc({ reason: e.reason });
      o.refusals.note({ reason: e.reason, message: e.message, remote: req.remoteAddress, forwardedFor: req.header('x-forwarded-for'), origin: req.header('origin') });
      return json(401, { error: 'bad_token', reason: e.reason, message: `The relay refused the token: ${e.message}.` });
    }
    return handle(p);
  };

  server.route('GET', '/api/tables', authorized((p) => {
    const visible = o.tables.names().filter((name) => {
      const t = o.tables.get(name)!;
      return (p.tables === null || p.tables.has(name)) && (t.tenantColumn !== null || p.allTenants) && allowedByRules(t, p);
    });
    return json(200, {
      tenant: p.tenant,
      allTenants: p.allTenants,
      watched: o.tables.names().length,
      watchCommand: watchCommand(o.dev?.stateDir),
      tables: visible.map((name) => {
        const t = o.tables.get(name)!;
        return {
          name,
          tenantColumn: t.tenantColumn,
          primaryKey: t.primaryKey,
          columns: (ruleViewFor(t, p)?.columns ?? [...t.columns.keys()]).map((c) => ({ name: c, type: t.declaredTypes.get(c) ?? t.columns.get(c)! })),
        };
      }),
    });
  }));

  server.route('GET', '/api/stats', authorized((p) => {
    if (!p.allTenants) return json(403, { error: 'forbidden', message: 'Only an all-tenant token may see the relay\'s connections.' });
    return json(200, o.stats());
  }));

  // Development mode only, and only to this machine: a tenant list and a token for it in one click.
  const devOnly = (req: HttpRequest): DevConsole | undefined =>
    o.dev && loopback(req.remoteAddress) && localHost(req.header('host')) ? o.dev : undefined;

  server.route('GET', '/api/dev', async (req) => {
    const dev = devOnly(req);
    if (!dev) return json(200, { dev: false });
    const tenants = await dev.tenants().catch((err: unknown) => {
      o.log.error({ err }, 'listing tenants for the console failed');
      return [];
    });
    return json(200, { dev: true, tenants, watchCommand: watchCommand(dev.stateDir) });
  });

  server.route('POST', '/api/dev-token', async (req) => {
    const dev = devOnly(req);
    if (!dev) return json(404, { error: 'not_found', message: 'Development tokens exist only in embedded development mode, on this machine.' });
    // a JSON content type makes a cross-site request need a preflight, which the relay never grants
    if (!/^application\/json\b/i.test(req.header('content-type'))) return json(415, { error: 'bad_request', message: 'Send the request as application/json.' });
    const body = await req.body();
    if (body === undefined) return json(413, { error: 'bad_request', message: 'The request body is too large.' });
    let request: { tenant?: unknown; allTenants?: unknown };
    try {
      request = JSON.parse(body.toString('utf8') || '{}') as typeof request;
    } catch {
      return json(400, { error: 'bad_request', message: 'The request body is not JSON.' });
    }
    const tenant = typeof request.tenant === 'string' && request.tenant.length > 0 && request.tenant.length <= 256 ? request.tenant : undefined;
    if (tenant === undefined && request.allTenants !== true) {
      return json(400, { error: 'bad_request', message: 'Give a tenant (a non-empty string) or allTenants: true.' });
    }
    try {
      return json(200, { token: await dev.token({ ...(tenant !== undefined ? { tenant } : {}), allTenants: request.allTenants === true }) });
    } catch (err) {
      o.log.error({ err }, 'minting a development token failed');
      return json(500, { error: 'internal', message: 'The relay could not mint a token.' });
    }
  }, { maxBody: MAX_BODY });
}
