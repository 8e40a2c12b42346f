// Test support for the relay: an in-process relay on the file's database, tokens, and a raw WebSocket client.
import http from 'node:http';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { afterAll } from 'vitest';
import { changes, registerLeakProbe, until, type TestDatabase } from '../../../db/testing/index.js';
import { loadConfig } from '../../ops/config.js';
import { createLogger } from '../../ops/log.js';
import { startRelay, type Relay } from '../../relay.js';
import type { ListenSession } from '../../feed/listen-session.js';
import { serverEnv } from './server-under-test.js';

export const SECRET = 'test-secret-test-secret-test-secret-0123';

export interface TestRelay extends Relay {
  url: string;
  http: string;
}

/**
 * Starts a relay on `db` (closed after the file) on the server under test, connected as the run's relay role (db.relayUrl: relay_reader, no
 * superuser) unless `env` gives DATABASE_URL; `env` overrides configuration variables.
 */
export async function startTestRelay(db: TestDatabase, env: Record<string, string> = {}, session?: ListenSession): Promise<TestRelay> {
  const config = loadConfig({ DATABASE_URL: db.relayUrl, PORT: '0', HOST: '127.0.0.1', RELAY_JWT_SECRET: SECRET, LOG_LEVEL: process.env.TEST_RELAY_LOG ?? 'silent', ...serverEnv, ...env });
  const relay = await startRelay({ config: { ...config, databaseUrl: config.databaseUrl! }, log: createLogger(config.logLevel), ...(session ? { session } : {}) });
  const unregister = registerLeakProbe(`relay:${relay.port} sockets`, () => relay.connections);
  afterAll(async () => {
    unregister();
    await relay.close();
  });
  return Object.assign(relay, { url: `ws://127.0.0.1:${relay.port}/ws`, http: `http://127.0.0.1:${relay.port}` });
}

/** An HS256 token; `tenant_id` unless `claims` says otherwise. */
/** Waits until every change committed so far has its seq (a relay's ticker numbers it within milliseconds); returns the last seq. */
export async function allNumbered(db: TestDatabase, timeoutMs = 20_000): Promise<number> {
  const { last } = await until(async () => {
    const { rows } = await db.query<{ pending: boolean; p: string }>(
      `select exists (select 1 from relay.log l where not exists (select 1 from relay.transactions t where t.txid = l.txid)) as pending, relay.position()::text as p`);
    return rows[0]!.pending ? undefined : { last: Number(rows[0]!.p) };
  }, { what: 'a seq for every committed change (is a ticker running?)', timeoutMs, intervalMs: 10 });
  return last;
}

/**
 * Waits until every change committed so far is numbered and `relay` has received it, so that a subscription made now
 * starts after it.
 */
export async function caughtUp(db: TestDatabase, relay: Relay, timeoutMs = 10_000): Promise<void> {
  let last = 0;
  await until(async () => relay.position >= (last = await allNumbered(db, timeoutMs)), {
    what: () => `the relay to catch up (position ${relay.position}, log ${last})`,
    timeoutMs,
    intervalMs: 10,
  });
}

/**
 * Waits until `relay` has published everything committed so far and each client has read it: a socket's frames arrive
 * in order, so its pong, asked for after the catch-up, comes after every frame published before it.
 */
export async function delivered(db: TestDatabase, relay: Relay, clients: Iterable<TestClient>): Promise<void> {
  await caughtUp(db, relay);
  for (const c of clients) {
    c.send({ type: 'ping' });
    await c.next((f) => f.type === 'pong');
  }
}

/** Sends a subscribe and resolves with the relay's answer to it: `subscribed`, `error` or `reset` for that id. */
export function subscribeAnswer(c: TestClient, id: string, table: string, extra: Record<string, unknown> = {}): Promise<Frame> {
  c.send({ type: 'subscribe', id, table, ...extra });
  return c.next((f) => (f.type === 'subscribed' || f.type === 'error' || f.type === 'reset') && (f.id ?? f.sub) === id);
}

export function token(claims: Record<string, unknown>, options: { secret?: string; expiresIn?: number | string; alg?: string } = {}): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: options.alg ?? 'HS256' }).setIssuedAt();
  if (options.expiresIn !== undefined) jwt.setExpirationTime(options.expiresIn);
  else jwt.setExpirationTime('1h');
  return jwt.sign(new TextEncoder().encode(options.secret ?? SECRET));
}

/** A message the relay sent, parsed. */
export type Frame = Record<string, any>;

/** A raw WebSocket client that records every frame. */
export interface TestClient {
  ws: WebSocket;
  frames: Frame[];
  /** Frames of type tx for one subscription. */
  txs(sub?: string): Frame[];
  send(message: unknown): void;
  /** Resolves with the first matching frame that no earlier next() returned (it may have arrived already). */
  next(match: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /** Waits until `cond()` holds. */
  until(cond: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
  /** The upgrade response's Sec-WebSocket-Extensions (`''` when none was negotiated). */
  extensions: string;
  /** Bytes read from the TCP socket so far: frames as they came over the wire. */
  bytesRead(): number;
}

/** `perMessageDeflate`: what the client offers (ws's option; by default it offers permessage-deflate, as browsers do). */
export async function connect(url: string, tokenOrNull: string | null, options: { via?: 'protocol' | 'query'; origin?: string; protocols?: string[]; perMessageDeflate?: WebSocket.ClientOptions['perMessageDeflate'] } = {}): Promise<TestClient> {
  const via = options.via ?? 'protocol';
  const target = via === 'query' && tokenOrNull ? `${url}?token=${encodeURIComponent(tokenOrNull)}` : url;
  const protocols = options.protocols ?? (via === 'protocol' && tokenOrNull ? ['pgrelay.v1', `bearer.${tokenOrNull}`] : ['pgrelay.v1']);
  const ws = new WebSocket(target, protocols, { ...(options.origin ? { origin: options.origin } : {}), ...(options.perMessageDeflate !== undefined ? { perMessageDeflate: options.perMessageDeflate } : {}) });
  let upgrade: http.IncomingMessage | undefined;
  ws.once('upgrade', (res) => (upgrade = res));
  const frames: Frame[] = [];
  const taken = new WeakSet<Frame>();
  const arrivals = changes();
  ws.on('message', (data) => {
    frames.push(JSON.parse(data.toString()) as Frame);
    arrivals.changed();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      arrivals.changed();
    });
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        ws.terminate();
        reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body }));
      });
    });
  });
  const lastFrames = () => JSON.stringify(frames.slice(-3)).slice(0, 600);
  const until = async (cond: () => boolean, timeoutMs = 10_000, what = 'condition') => {
    await arrivals.until(cond, { timeoutMs, what: () => `${what}; last frames: ${lastFrames()}` });
  };
  return {
    ws,
    frames,
    txs: (sub) => frames.filter((f) => f.type === 'tx' && (sub === undefined || f.sub === sub)),
    send: (message) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)),
    async next(match, timeoutMs = 10_000) {
      const found = await arrivals.until(() => frames.find((f) => !taken.has(f) && match(f)), { timeoutMs, what: () => `a matching frame; last frames: ${lastFrames()}` });
      taken.add(found);
      return found;
    },
    until,
    closed,
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return;
      ws.close();
      await closed;
    },
    extensions: String(upgrade?.headers['sec-websocket-extensions'] ?? ''),
    bytesRead: () => upgrade?.socket.bytesRead ?? 0,
  };
}

/** The HTTP status and body a refused upgrade gets. */
export async function refused(url: string, tokenOrNull: string | null, options: Parameters<typeof connect>[2] = {}): Promise<{ status: number; body: string }> {
  try {
    const c = await connect(url, tokenOrNull, options);
    await c.close();
  } catch (err) {
    const e = err as { status?: number; body?: string };
    if (e.status) return { status: e.status, body: e.body ?? '' };
    throw err;
  }
  throw new Error('the upgrade was accepted');
}

/** GET over a connection of its own that closes afterwards (fetch would keep a pooled socket open past the test). */
export function httpGet(url: string): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    }).on('error', reject);
  });
}

/** The value of one Prometheus sample, e.g. metric(text, 'pgrelay_frames_published_total'). */
export function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}
