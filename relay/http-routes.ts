// The console's HTTP side: the page and its icon, the tables a token may see, the relay's load per tenant (all-tenant tokens), and dev tokens.
import { AuthError, type Principal, type TokenVerifier } from './auth.js';
import type { StaticFile } from './console-page.js';
import type { DevConsole } from './dev-console.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { Refusals } from './refusals.js';
import type { UWS } from './uws.js';
import { watchCommand } from './watch-hint.js';
import { ruleViewFor } from './rules.js';
import type { WatchedTable, WatchedTables } from './watched-tables.js';

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
  files: { page: StaticFile; favicon: StaticFile };
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

function json(res: UWS.HttpResponse, status: string, body: unknown): void {
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').end(JSON.stringify(body));
  });
}

function serve(res: UWS.HttpResponse, file: StaticFile, ifNoneMatch: string): void {
  res.cork(() => {
    if (ifNoneMatch === file.etag) {
      res.writeStatus('304 Not Modified').writeHeader('etag', file.etag).writeHeader('cache-control', file.cacheControl).endWithoutBody();
      return;
    }
    res.writeHeader('content-type', file.contentType).writeHeader('etag', file.etag).writeHeader('cache-control', file.cacheControl)
      .writeHeader('x-content-type-options', 'nosniff').end(file.body);
  });
}

export function registerHttpRoutes(app: UWS.TemplatedApp, o: HttpRoutesOptions): void {
  app.get('/', (res, req) => serve(res, o.files.page, req.getHeader('if-none-match')));
  app.get('/favicon.svg', (res, req) => serve(res, o.files.favicon, req.getHeader('if-none-match')));
  app.get('/favicon.ico', (res, req) => serve(res, o.files.favicon, req.getHeader('if-none-match')));

  /**
   * Runs `handle` with the principal of the request's `Authorization: Bearer` token, in the uWS order: headers copied,
   * onAborted, await, aborted checked, then a corked write. A refused token answers 401 with the reason.
   */
  const authorized = (handle: (res: UWS.HttpResponse, p: Principal) => void) => (res: UWS.HttpResponse, req: UWS.HttpRequest) => {
    const header = req.getHeader('authorization');
    const origin = req.getHeader('origin');
    const remote = Buffer.from(res.getRemoteAddressAsText()).toString();
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const token = /^bearer\s+(.+)$/i.exec(header)?.[1]?.trim();
    Promise.resolve()
      .then(() => o.verifier.verify(token))
      .then(
        (p) => {
          if (!aborted) handle(res, p);
        },
        (err: unknown) => {
          if (aborted) return;
          const e = err instanceof AuthError ? err : new AuthError('malformed', 'token not accepted');
          o.metrics.authFailures.inc({ reason: e.reason });
          o.refusals.note({ reason: e.reason, message: e.message, remote, origin });
          json(res, '401 Unauthorized', { error: 'bad_token', reason: e.reason, message: `The relay refused the token: ${e.message}.` });
        },
      );
  };

  app.get('/api/tables', authorized((res, p) => {
    const visible = o.tables.names().filter((name) => {
      const t = o.tables.get(name)!;
      return (p.tables === null || p.tables.has(name)) && (t.tenantColumn !== null || p.allTenants) && allowedByRules(t, p);
    });
    json(res, '200 OK', {
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

  app.get('/api/stats', authorized((res, p) => {
    if (!p.allTenants) return json(res, '403 Forbidden', { error: 'forbidden', message: 'Only an all-tenant token may see the relay\'s connections.' });
    json(res, '200 OK', o.stats());
  }));

  // Development mode only, and only to this machine: a tenant list and a token for it in one click.
  const devOnly = (res: UWS.HttpResponse, req: UWS.HttpRequest): DevConsole | undefined => {
    const remote = Buffer.from(res.getRemoteAddressAsText()).toString();
    if (o.dev && loopback(remote) && localHost(req.getHeader('host'))) return o.dev;
    return undefined;
  };
  app.get('/api/dev', (res, req) => {
    const dev = devOnly(res, req);
    if (!dev) return json(res, '200 OK', { dev: false });
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    dev.tenants().then(
      (tenants) => {
        if (!aborted) json(res, '200 OK', { dev: true, tenants, watchCommand: watchCommand(dev.stateDir) });
      },
      (err: unknown) => {
        o.log.error({ err }, 'listing tenants for the console failed');
        if (!aborted) json(res, '200 OK', { dev: true, tenants: [], watchCommand: watchCommand(dev.stateDir) });
      },
    );
  });
  app.post('/api/dev-token', (res, req) => {
    const dev = devOnly(res, req);
    // a JSON content type makes a cross-site request need a preflight, which the relay never grants
    const isJson = /^application\/json\b/i.test(req.getHeader('content-type'));
    if (!dev) return json(res, '404 Not Found', { error: 'not_found', message: 'Development tokens exist only in embedded development mode, on this machine.' });
    if (!isJson) return json(res, '415 Unsupported Media Type', { error: 'bad_request', message: 'Send the request as application/json.' });
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    let body = Buffer.alloc(0);
    res.onData((chunk, isLast) => {
      if (body.length + chunk.byteLength > MAX_BODY) {
        if (!aborted) {
          aborted = true;
          json(res, '413 Content Too Large', { error: 'bad_request', message: 'The request body is too large.' });
        }
        return;
      }
      // uWS reuses the chunk's memory after this call: copy it
      body = Buffer.concat([body, Buffer.from(chunk.slice(0))]);
      if (!isLast || aborted) return;
      let request: { tenant?: unknown; allTenants?: unknown };
      try {
        request = JSON.parse(body.toString('utf8') || '{}') as typeof request;
      } catch {
        return json(res, '400 Bad Request', { error: 'bad_request', message: 'The request body is not JSON.' });
      }
      const tenant = typeof request.tenant === 'string' && request.tenant.length > 0 && request.tenant.length <= 256 ? request.tenant : undefined;
      if (tenant === undefined && request.allTenants !== true) {
        return json(res, '400 Bad Request', { error: 'bad_request', message: 'Give a tenant (a non-empty string) or allTenants: true.' });
      }
      dev.token({ ...(tenant !== undefined ? { tenant } : {}), allTenants: request.allTenants === true }).then(
        (token) => {
          if (!aborted) json(res, '200 OK', { token });
        },
        (err: unknown) => {
          o.log.error({ err }, 'minting a development token failed');
          if (!aborted) json(res, '500 Internal Server Error', { error: 'internal', message: 'The relay could not mint a token.' });
        },
      );
    });
  });
}
